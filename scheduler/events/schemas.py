"""API schemas of events: what clients send and what they get back."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator, AwareDatetime, Field, PlainValidator, StringConstraints, TypeAdapter, ValidationError, field_validator,
)

from scheduler.api.schemas import SUPPORTED_YEARS, Body, CsvList, Out, Page, PageQuery, Visible, within_supported_years
from scheduler.events.kinds import KINDS, Kind
from scheduler.events.models import Status

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Visible]
Description = Annotated[str, StringConstraints(max_length=10_000), Visible]
Place = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), Visible]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), Visible]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
TimeZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RRuleText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Capacity = Annotated[int, Field(ge=0, le=1_000_000)]
#: ``2024-05-18T14:30:00+08:00``, or a plain date for all-day events.
EventTime = Annotated[AwareDatetime | dt.date, AfterValidator(within_supported_years)]


def _supported_month(value: str) -> str:
    """A ``YYYY-MM`` month of one of the supported years."""
    if int(value[:4]) not in SUPPORTED_YEARS:
        raise ValueError(f"give a year between {SUPPORTED_YEARS.start} and {SUPPORTED_YEARS.stop - 1}")
    return value


#: ``YYYY-MM``.
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$"), AfterValidator(_supported_month)]

#: The documented shape of ``details``: one of the kinds' detail models.
_KindDetails = Union[tuple(info.details for info in KINDS.values())]  # type: ignore[valid-type]


def _details_object(value: Any) -> dict[str, Any]:
    """Details are checked against the event's kind later (the kind may come from the stored event)."""
    if not isinstance(value, dict):
        raise ValueError("details must be a JSON object")
    return value


#: Kind-specific fields; validated per kind by :func:`scheduler.events.kinds.validate_details`.
Details = Annotated[
    dict[str, Any],
    PlainValidator(_details_object, json_schema_input_type=_KindDetails),
    Field(description="Kind-specific fields: " + ", ".join(f"{k.value} → {i.details.__name__}" for k, i in KINDS.items())),
]

_DURATION = TypeAdapter(dt.timedelta)
MAX_REMINDER_OFFSET = dt.timedelta(days=90)


def parse_offset(text: str) -> dt.timedelta:
    """Parse an ISO 8601 duration (``P1D``, ``PT2H``) as a reminder offset before the start."""
    if not text.startswith("P"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P1D or PT2H")
    try:
        value = _DURATION.validate_python(text)
    except ValidationError:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P1D or PT2H") from None
    if not dt.timedelta(minutes=5) <= value <= MAX_REMINDER_OFFSET:
        raise ValueError(f"{text!r} must be between 5 minutes and 90 days")
    return value


ReminderOffsets = Annotated[list[Annotated[str, StringConstraints(max_length=32)]], Field(max_length=10)]


class _EventFields(Body):
    description: Description = ""
    venue: Place = ""
    address: Address = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    all_day: bool = False
    timezone: TimeZoneName | None = None
    rrule: RRuleText | None = None
    capacity: Capacity | None = None
    details: Details | None = None
    reminders: ReminderOffsets | None = Field(
        None, description="ISO 8601 durations before the start; the kind's default plan when absent."
    )

    @field_validator("reminders")
    @classmethod
    def _offsets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            offsets = [parse_offset(text) for text in value]
            if len(set(offsets)) != len(offsets):  # P1D and PT24H are the same offset
                raise ValueError("the same offset is listed twice")
        return value


class EventCreate(_EventFields):
    """A new event; it starts as a draft."""

    kind: Kind
    title: Title
    org: Slug = Field(description="Slug of the organizing organization.")
    starts_at: EventTime
    ends_at: EventTime | None = Field(None, description="Defaults to 2 hours after the start (the next day when all-day).")


class EventUpdate(_EventFields):
    """Changes to an event: only the fields sent change. ``kind`` and ``status`` cannot change here."""

    title: Title | None = None
    org: Slug | None = None
    starts_at: EventTime | None = None
    ends_at: EventTime | None = None
    description: Description | None = None  # type: ignore[assignment]
    venue: Place | None = None  # type: ignore[assignment]
    address: Address | None = None  # type: ignore[assignment]
    all_day: bool | None = None  # type: ignore[assignment]


class CancelBody(Body):
    """Why the event is cancelled; participants are told."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Visible]


Count = Annotated[int, Field(ge=0, le=10_000_000)]


class OccurrenceCancelBody(Body):
    """Which occurrence of the series to cancel."""

    starts_at: Annotated[AwareDatetime, AfterValidator(within_supported_years)] = Field(description="The occurrence's start.")


class OutcomeBody(Body):
    """What the event achieved. Achievements apply to matchmaking fairs and contests."""

    attendance: Count | None = None
    achievements_presented: Count | None = None
    achievements_matched: Count | None = None
    achievements_commercialized: Count | None = None
    notes: Annotated[str, StringConstraints(max_length=5000), Visible] = ""


class OutcomeOut(Out):
    """A recorded outcome."""

    attendance: int | None
    achievements_presented: int | None
    achievements_matched: int | None
    achievements_commercialized: int | None
    notes: str
    recorded_at: dt.datetime


class EventLinks(Out):
    """Where to find the event."""

    self: str
    registrations: str


class EventOut(Out):
    """An event as the API shows it. Times are in the event's own time zone."""

    id: int
    uid: str
    kind: Kind
    kind_name_zh: str
    kind_name_en: str
    title: str
    description: str
    org: str
    org_name_zh: str
    org_name_en: str
    venue: str
    address: str
    latitude: float | None
    longitude: float | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    all_day: bool
    timezone: str
    rrule: str | None
    exdates: list[dt.datetime] = Field(description="Cancelled occurrences of the series (their starts).")
    status: Status
    capacity: int | None
    registered: int
    waitlisted: int
    seats_left: int | None
    registration_closes_at: dt.datetime
    details: dict[str, Any] = Field(description="Kind-specific fields, as in the kind's details schema (StudyTourDetails, ...).")
    outcome: OutcomeOut | None
    reminders: list[str]
    sequence: int
    cancel_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    links: EventLinks


class EventPage(Page[EventOut]):
    """One page of events."""


class EventListQuery(PageQuery):
    """Filters of the event list; each list filter takes ``a,b`` or repeated keys."""

    kind: CsvList[Kind] | None = None
    org: CsvList[Slug] | None = Field(None, description="Organizations, each with everything below it.")
    county: CsvList[Slug] | None = None
    status: CsvList[Status] | None = None
    from_: EventTime | None = Field(None, alias="from", description="Events still running at or after this time.")
    to: EventTime | None = Field(None, description="Events starting before this time.")
    month: Month | None = Field(
        None, description="YYYY-MM in the application's time zone; combines with from/to."
    )
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        None, description="Text in the title, description or venue."
    )
