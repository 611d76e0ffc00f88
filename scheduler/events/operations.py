"""Changes to events: create, update, publish, cancel, record outcomes (flush, never commit)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import select

from scheduler.api.errors import Conflict, Invalid
from scheduler.auth.models import User
from scheduler.events.kinds import KINDS, Kind, validate_details
from scheduler.events.models import Event, EventOutcome, FeedRemoval, Status
from scheduler.events.times import normalize_times, occurrence_starts
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.util.ids import new_ulid
from scheduler.util.time import UTC, now

if TYPE_CHECKING:
    from scheduler.registrations.models import Registration

#: Changing any of these raises the iCalendar SEQUENCE (calendar clients then update their copy).
SEQUENCE_FIELDS = ("starts_at", "ends_at", "all_day", "timezone", "venue", "address", "rrule", "exdates", "status")
_PLAIN_FIELDS = ("title", "description", "venue", "address", "latitude", "longitude", "capacity", "import_source")
_ACHIEVEMENT_KINDS = (Kind.MATCHMAKING, Kind.CONTEST)


def effective_reminders(event: Event) -> list[str]:
    """The event's reminder offsets: its own, or its kind's default plan."""
    if event.reminder_offsets is not None:
        return list(event.reminder_offsets)
    return list(KINDS[Kind(event.kind)].default_reminders)


def _set_times(event: Event, start: dt.date | dt.datetime, end: dt.date | dt.datetime | None, all_day: bool, tz_name: str, rule: str | None) -> None:
    times = normalize_times(start, end, all_day=all_day, tz_name=tz_name, rule_text=rule)
    event.starts_at, event.ends_at, event.last_ends_at = times.starts_at, times.ends_at, times.last_ends_at
    event.span_seconds, event.rrule = times.span_seconds, times.rrule
    event.all_day, event.timezone = all_day, tz_name


def _set_exdates(event: Event, exdates: list[str]) -> None:
    """Exclude occurrences of a series (their UTC starts, ISO 8601); each must be one of its occurrences."""
    stamps = sorted(set(exdates))
    if stamps:
        if not event.rrule:
            raise Invalid(fields={"exdates": "Only a recurring series has occurrences to leave out."})
        starts = {start.isoformat() for start in occurrence_starts(event.starts_at, event.timezone, event.rrule)}
        unknown = [stamp for stamp in stamps if stamp not in starts]
        if unknown:
            raise Invalid(fields={"exdates": f"{unknown[0]} is not an occurrence of the series."})
        if len(stamps) >= len(starts):
            raise Invalid(fields={"exdates": "Every occurrence would be left out: cancel the event instead."})
    event.exdates = stamps


def _moved_exdates(event: Event, shift: dt.timedelta) -> list[str]:
    """Cancelled occurrences move with their series; those the new rule no longer has are dropped."""
    if not event.rrule:
        return []
    starts = {start.isoformat() for start in occurrence_starts(event.starts_at, event.timezone, event.rrule)}
    moved = ((dt.datetime.fromisoformat(stamp) + shift).isoformat() for stamp in event.exdates)
    return [stamp for stamp in moved if stamp in starts]


def _replan(event: Event) -> None:
    """Keep the event's reminders in step with it (reminders build on events, hence the late import)."""
    from scheduler.reminders.plan import sync_reminders

    sync_reminders(event)


def _announce(event: Event, was: str, changed: dict[str, tuple[Any, Any]]) -> None:
    """Queue the event message partners subscribe to (an outbox row committed with the change)."""
    from scheduler.reminders.dispatch import queue_event_message  # reminders build on events

    if was == Status.DRAFT and event.status == Status.PUBLISHED:
        queue_event_message(event, "event.published")
    elif was == Status.PUBLISHED and event.status == Status.CANCELLED:
        queue_event_message(event, "event.cancelled")
        _tell_participants(event, "event.cancelled")
    elif was == Status.PUBLISHED and changed:
        changes = {name: {"old": _plain(old), "new": _plain(new)} for name, (old, new) in changed.items()}
        queue_event_message(event, "event.updated", changes=changes)
        if {"starts_at", "venue", "address"} & changed.keys() and event.status == Status.PUBLISHED:
            _tell_participants(event, "event.updated", change=_change_in_words(event, changed))


def _participants(event: Event) -> list[Registration]:
    """Everyone registered or waiting: who a cancellation or a move is told."""
    from scheduler.registrations.models import Registration, RegistrationStatus

    return list(db.session.scalars(select(Registration).where(
        Registration.event_id == event.id,
        Registration.status.in_([RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value]),
    )))


def _tell_participants(event: Event, type_: str, change: str = "") -> None:
    """Texts (or other chosen channels) to everyone registered or waiting, for a cancellation or a move."""
    from scheduler.reminders.dispatch import queue_participant_message

    queue_participant_message(event, type_, _participants(event), change=change)


@dataclass(frozen=True)
class Audience:
    """Who is told of a cancellation: what the outbox would queue and the channels actually send."""

    #: Registrants holding a seat, and those on the waitlist (told or not).
    seated: int
    waitlisted: int
    #: Of them, those who get a text: they chose texts, did not opt out, and the provider reaches their number.
    seated_by_text: int
    waitlisted_by_text: int
    #: Enabled webhook and robot endpoints whose filters let ``event.cancelled`` through.
    endpoints: int


def cancellation_audience(event: Event) -> Audience:
    """Who :func:`cancel_event` would tell, counted as :func:`_announce` queues the messages and
    the SMS channel then sends them (only a published event's cancellation is announced)."""
    from scheduler.channels.registry import REGISTRANT_CHANNELS
    from scheduler.channels.sms.channel import provider, why_not_texted
    from scheduler.channels.sms.choices import opted_out
    from scheduler.registrations.models import RegistrationStatus
    from scheduler.reminders.dispatch import Subscribers

    people = _participants(event)
    seated = [r for r in people if r.status == RegistrationStatus.REGISTERED]
    waiting = [r for r in people if r.status == RegistrationStatus.WAITLISTED]
    if event.status != Status.PUBLISHED:
        return Audience(len(seated), len(waiting), 0, 0, 0)
    stopped, name = opted_out({r.phone for r in people}), provider().name
    everyone = (RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value)
    sms_on = "sms" in REGISTRANT_CHANNELS

    def texted(registration: Registration) -> bool:  # as the SMS channel decides when it sends
        return sms_on and why_not_texted(registration, everyone, stopped, name) is None

    return Audience(
        seated=len(seated), waitlisted=len(waiting),
        seated_by_text=sum(1 for r in seated if texted(r)), waitlisted_by_text=sum(1 for r in waiting if texted(r)),
        endpoints=len(Subscribers().matching(event, "event.cancelled")),
    )


def _change_in_words(event: Event, changed: dict[str, tuple[Any, Any]]) -> str:
    """``时间改为6月29日 09:00，地点改为…``: what moved, as a text says it."""
    from scheduler.channels.sms.templates import local_time

    parts = []
    if "starts_at" in changed:
        parts.append(f"时间改为{local_time(event.starts_at, event.timezone)}")
    if "venue" in changed or "address" in changed:
        parts.append(f"地点改为{event.venue or event.address}")
    return "，".join(parts)


def _plain(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, dt.datetime) else value


def _changed(event: Event, before: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """After a change: raise SEQUENCE where due, keep the reminders in step, tell subscribers."""
    changed = _touch(event, before)
    db.session.flush()
    _replan(event)
    _announce(event, before["status"], changed)
    return changed


def _snapshot(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in SEQUENCE_FIELDS}


def _touch(event: Event, before: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Raise SEQUENCE if a scheduling field changed; return the changed fields (old, new)."""
    after = _snapshot(event)
    changed = {name: (before[name], after[name]) for name in SEQUENCE_FIELDS if before[name] != after[name]}
    if changed:
        event.sequence += 1
    event.updated_at = now()
    return changed


def create_event(
    *,
    org: Organization,
    kind: Kind | str,
    title: str,
    starts_at: dt.date | dt.datetime,
    ends_at: dt.date | dt.datetime | None = None,
    all_day: bool = False,
    timezone: str | None = None,
    rrule: str | None = None,
    details: dict[str, Any] | None = None,
    reminders: list[str] | None = None,
    created_by: User | None = None,
    uid: str | None = None,
    exdates: list[str] | None = None,
    **fields: Any,
) -> Event:
    """Create a draft event after checking every field; raises a 422 naming what is wrong."""
    kind = Kind(kind)
    event = Event(
        uid=uid or f"{new_ulid()}@scheduler",
        kind=kind.value,
        title=title,
        org=org,
        status=Status.DRAFT.value,
        details=validate_details(kind, details),
        reminder_offsets=reminders,
        created_by_id=created_by.id if created_by else None,
        sequence=0,
        description="",
        venue="",
        address="",
    )
    for name, value in fields.items():
        if name not in _PLAIN_FIELDS:
            raise TypeError(f"create_event() got an unexpected field {name!r}")
        setattr(event, name, value)
    _set_times(event, starts_at, ends_at, all_day, timezone or current_app.config["TIMEZONE"], rrule)
    _set_exdates(event, exdates or [])
    event.created_at = event.updated_at = now()
    db.session.add(event)
    db.session.flush()
    return event


def _keep_duration(event: Event, new_start: dt.date | dt.datetime | None) -> dt.date | dt.datetime:
    """The end that keeps the event's length when only its start moves."""
    length = event.ends_at - event.starts_at
    if new_start is None:
        return event.ends_at
    if isinstance(new_start, dt.datetime):
        return new_start + length
    return new_start + dt.timedelta(days=max(1, round(length / dt.timedelta(days=1))) - 1)


def update_event(event: Event, changes: dict[str, Any], *, org: Organization | None = None) -> dict[str, tuple[Any, Any]]:
    """Apply ``changes`` (field → new value, only the fields sent) to an event.

    Returns the scheduling fields that changed, as (old, new). A cancelled or
    completed event is not edited (409). Every change is checked before any is
    made, so a refused update leaves the event as it was.
    """
    if event.status in (Status.CANCELLED, Status.COMPLETED):
        raise Conflict(f"A {event.status} event cannot be edited.", code="not_editable")
    details = validate_details(Kind(event.kind), changes["details"]) if "details" in changes else None
    before = _snapshot(event)
    if {"starts_at", "ends_at", "all_day", "timezone", "rrule"} & changes.keys():
        start = changes.get("starts_at", event.starts_at)
        end = changes["ends_at"] if "ends_at" in changes else _keep_duration(event, changes.get("starts_at"))
        tz_name = changes.get("timezone") or event.timezone
        old_start = event.starts_at
        # checks the times first and changes the event only when they are valid
        _set_times(event, start, end, changes.get("all_day", event.all_day), tz_name, changes.get("rrule", event.rrule))
        if event.exdates and "exdates" not in changes:
            changes = {**changes, "exdates": _moved_exdates(event, event.starts_at - old_start)}
    if "exdates" in changes:
        _set_exdates(event, changes["exdates"] or [])
    if org is not None and org.id != event.org_id:
        if event.status != Status.DRAFT:
            db.session.add(FeedRemoval(uid=event.uid, org_id=event.org_id, kind=event.kind, removed_at=now()))
        event.org = org
    if details is not None:
        event.details = details
    if "reminders" in changes:
        event.reminder_offsets = changes["reminders"]
    for name in _PLAIN_FIELDS:
        if name in changes:
            setattr(event, name, changes[name])
    if "capacity" in changes:  # more seats, or none limited any more: the waitlist moves up
        from scheduler.registrations.operations import fill_free_seats  # registrations depend on events


        fill_free_seats(event)
    return _changed(event, before)


def publish_event(event: Event) -> None:
    """Publish a draft: it appears in lists and feeds, and registration opens."""
    if event.status != Status.DRAFT:
        raise Conflict(f"Only a draft can be published; this event is {event.status}.", code="invalid_transition")
    before = _snapshot(event)
    event.status = Status.PUBLISHED.value
    event.published_at = now()
    _changed(event, before)


def cancel_event(event: Event, reason: str) -> None:
    """Cancel a draft or published event with a reason shown to participants."""
    if event.status not in (Status.DRAFT, Status.PUBLISHED):
        raise Conflict(f"A {event.status} event cannot be cancelled.", code="invalid_transition")
    before = _snapshot(event)
    event.status = Status.CANCELLED.value
    event.cancel_reason = reason
    event.cancelled_at = now()
    _changed(event, before)


def cancel_occurrence(event: Event, occurrence_start: dt.datetime) -> None:
    """Cancel one occurrence of a recurring series (an EXDATE); the rest go ahead."""
    if event.status not in (Status.DRAFT, Status.PUBLISHED):
        raise Conflict(f"A {event.status} event cannot be changed.", code="not_editable")
    if not event.rrule:
        raise Conflict("Only a recurring series has occurrences to cancel; cancel the event instead.", code="not_recurring")
    start = occurrence_start.astimezone(UTC)
    starts = occurrence_starts(event.starts_at, event.timezone, event.rrule)
    if start not in starts:
        raise Invalid(fields={"starts_at": "No occurrence of the series starts at this time."})
    stamp = start.isoformat()
    if stamp in event.exdates:
        raise Conflict("This occurrence is cancelled already.", code="already_cancelled")
    remaining = [s for s in starts if s.isoformat() not in event.exdates and s != start]
    if not remaining:
        raise Conflict("This is the last occurrence left: cancel the event instead.", code="last_occurrence")
    before = _snapshot(event)
    event.exdates = sorted([*event.exdates, stamp])
    _changed(event, before)


def delete_event(event: Event) -> None:
    """Delete an event. A draft simply goes; a published one leaves a mark so feeds update."""
    if event.status != Status.DRAFT:
        db.session.add(FeedRemoval(uid=event.uid, org_id=event.org_id, kind=event.kind, removed_at=now()))
    if event.status == Status.PUBLISHED:  # partners drop it as they would a cancelled one
        from scheduler.reminders.dispatch import queue_event_message

        event.status, event.cancel_reason = Status.CANCELLED.value, event.cancel_reason or "deleted"
        queue_event_message(event, "event.cancelled", dedupe_key=f"event:{event.id}:deleted")
    db.session.delete(event)
    db.session.flush()


def check_outcome_allowed(event: Event) -> None:
    """Raise the 409 :func:`record_outcome` gives when the event cannot have an outcome (yet)."""
    if event.status not in (Status.PUBLISHED, Status.COMPLETED):
        raise Conflict(f"Outcomes are recorded for published events; this one is {event.status}.", code="invalid_transition")
    if event.starts_at > now():
        raise Conflict("The event has not taken place yet.", code="not_started")


def record_outcome(event: Event, values: dict[str, Any], *, user: User | None = None) -> EventOutcome:
    """Record (replace) what an event achieved; a finished event becomes ``completed``.

    Allowed once the event has started. Achievement counts are for matchmaking fairs
    and contests, and must not exceed each other (commercialized ≤ matched ≤ presented).
    """
    check_outcome_allowed(event)
    errors = {}
    achievements = ("achievements_presented", "achievements_matched", "achievements_commercialized")
    if Kind(event.kind) not in _ACHIEVEMENT_KINDS:
        errors |= {f: "Only matchmaking fairs and contests record achievements." for f in achievements if values.get(f) is not None}
    presented, matched, commercialized = (values.get(f) for f in achievements)
    if presented is not None and matched is not None and matched > presented:
        errors["achievements_matched"] = "More achievements matched than presented."
    if matched is not None and commercialized is not None and commercialized > matched:
        errors["achievements_commercialized"] = "More achievements commercialized than matched."
    if errors:
        raise Invalid(fields=errors)
    outcome = event.outcome or EventOutcome(event=event)
    for name in ("attendance", *achievements):
        setattr(outcome, name, values.get(name))
    outcome.notes = values.get("notes") or ""
    outcome.recorded_at = now()
    outcome.recorded_by_id = user.id if user else None
    db.session.add(outcome)
    before = _snapshot(event)
    if event.last_ends_at <= now():
        event.status = Status.COMPLETED.value
    _changed(event, before)
    return outcome


def complete_finished_events(at: dt.datetime | None = None) -> int:
    """Mark published events whose last occurrence has ended as ``completed``; return how many."""
    at = at or now()
    events = db.session.scalars(
        select(Event).where(Event.status == Status.PUBLISHED.value, Event.last_ends_at <= at)
    ).all()
    for event in events:
        before = _snapshot(event)
        event.status = Status.COMPLETED.value
        _changed(event, before)
    return len(events)
