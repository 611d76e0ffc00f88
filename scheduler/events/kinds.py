"""The five event kinds: names, kind-specific details, and default reminder plans.

Each kind's ``details`` are a pydantic model validated strictly (unknown keys refused).
"""
from __future__ import annotations

import json

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator,
)
from pydantic_core import PydanticCustomError

from scheduler.api.errors import from_validation_error
from scheduler.api.schemas import Visible, within_supported_years

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Visible]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), Visible]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Moment = Annotated[AwareDatetime, AfterValidator(within_supported_years)]


class Kind(StrEnum):
    """The five kinds of event in the year's plan."""

    SCIENCE_CARNIVAL = "science_carnival"
    TECH_WEEK = "tech_week"
    STUDY_TOUR = "study_tour"
    MATCHMAKING = "matchmaking"
    CONTEST = "contest"


class Sector(StrEnum):
    """Sectors of the "邑科汇" matchmaking fairs."""

    INTELLIGENT_EQUIPMENT = "intelligent_equipment"
    NEW_ENERGY = "new_energy"
    HOME_APPLIANCES = "home_appliances"
    NEW_MATERIALS = "new_materials"
    BIOMEDICINE = "biomedicine"
    DIGITAL_ECONOMY = "digital_economy"
    MODERN_AGRICULTURE = "modern_agriculture"
    OTHER = "other"


#: Sector names for people: (Chinese, English).
SECTOR_NAMES: dict[str, tuple[str, str]] = {
    Sector.INTELLIGENT_EQUIPMENT: ("智能装备", "Intelligent equipment"),
    Sector.NEW_ENERGY: ("新能源", "New energy"),
    Sector.HOME_APPLIANCES: ("家电", "Home appliances"),
    Sector.NEW_MATERIALS: ("新材料", "New materials"),
    Sector.BIOMEDICINE: ("生物医药", "Biomedicine"),
    Sector.DIGITAL_ECONOMY: ("数字经济", "Digital economy"),
    Sector.MODERN_AGRICULTURE: ("现代农业", "Modern agriculture"),
    Sector.OTHER: ("其他", "Other"),
}


class _Details(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _cross_field_error(field: str, message: str) -> PydanticCustomError:
    """An error of a check across fields, naming the ``field`` it is reported on (see ``from_validation_error``)."""
    return PydanticCustomError("value_error", message, {"field": field})


class CarnivalDetails(_Details):
    """科普嘉年华: an open science fair."""

    theme: ShortText | None = None
    expected_attendance: Count | None = None
    booths: Count | None = None
    audience: ShortText | None = None


class TechWeekSession(_Details):
    """One session of the science & technology week programme."""

    title: ShortText
    starts_at: Moment
    ends_at: Moment | None = None
    venue: ShortText | None = None
    county: ShortText | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> TechWeekSession:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise _cross_field_error("ends_at", "the end must come after the start")
        return self


class TechWeekDetails(_Details):
    """全国科技活动周: a multi-day programme of sessions across counties."""

    theme: ShortText | None = None
    sessions: Annotated[list[TechWeekSession], Field(max_length=200)] = []


class ItineraryStop(_Details):
    """One stop of a study tour."""

    time: ClockTime | None = None
    place: ShortText
    note: LongText | None = None


class StudyTourDetails(_Details):
    """科普研学游: a guided tour to labs and science bases, often for students."""

    meeting_point: ShortText
    meeting_time: Moment | None = None
    age_min: Annotated[int, Field(ge=0, le=120)] | None = None
    age_max: Annotated[int, Field(ge=0, le=120)] | None = None
    itinerary: Annotated[list[ItineraryStop], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _ages_in_order(self) -> StudyTourDetails:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise _cross_field_error("age_min", "age_min must not be above age_max")
        return self


class MatchmakingDetails(_Details):
    """"邑科汇" 科技成果对接会: a technology-achievement matchmaking fair for one sector."""

    sector: Sector
    partners: Annotated[list[ShortText], Field(max_length=100)] = []
    achievements_planned: Count | None = None


#: A contest's stages in order: detail key → (Chinese, English) names.
CONTEST_STAGES: dict[str, tuple[str, str]] = {
    "registration_deadline": ("报名截止", "Registration closes"),
    "preliminary_at": ("初赛", "Preliminary"),
    "final_at": ("决赛", "Final"),
    "award_ceremony_at": ("颁奖", "Award ceremony"),
}


class ContestDetails(_Details):
    """"科技杯" 双创大赛: an innovation & entrepreneurship contest with stages."""

    registration_deadline: Moment
    preliminary_at: Moment | None = None
    final_at: Moment
    award_ceremony_at: Moment | None = None
    tracks: Annotated[list[ShortText], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _stages_in_order(self) -> ContestDetails:
        latest: tuple[str, AwareDatetime] | None = None
        for name in ("registration_deadline", "preliminary_at", "final_at", "award_ceremony_at"):
            when = getattr(self, name)
            if when is None:
                continue
            if latest is not None and when < latest[1]:
                order = "registration deadline, preliminary, final, award ceremony"
                raise _cross_field_error(name, f"{name} must not come before {latest[0]}: the stages go {order}")
            latest = (name, when)
        return self


@dataclass(frozen=True)
class KindInfo:
    """Everything the application knows about one kind."""

    key: Kind
    name_zh: str
    name_en: str
    details: type[_Details]
    #: ISO 8601 durations before the start (or the kind's anchor) when reminders go out.
    default_reminders: tuple[str, ...]
    #: Counts toward the year's science-popularization minimum (科普活动).
    popularization: bool


KINDS: dict[Kind, KindInfo] = {
    info.key: info
    for info in (
        KindInfo(Kind.SCIENCE_CARNIVAL, "科普嘉年华", "Science carnival", CarnivalDetails, ("P1D",), True),
        KindInfo(Kind.TECH_WEEK, "全国科技活动周", "National Science & Technology Week", TechWeekDetails, ("P1D",), True),
        KindInfo(Kind.STUDY_TOUR, "科普研学游", "Science study tour", StudyTourDetails, ("P3D", "P1D"), True),
        KindInfo(
            Kind.MATCHMAKING, "“邑科汇”科技成果对接会", "Technology-achievement matchmaking fair",
            MatchmakingDetails, ("P7D", "P1D", "PT2H"), False,
        ),
        KindInfo(
            Kind.CONTEST, "“科技杯”双创大赛", "Innovation & entrepreneurship contest",
            ContestDetails, ("P3D", "P1D"), False,
        ),
    )
}

POPULARIZATION_KINDS = tuple(k for k, info in KINDS.items() if info.popularization)


def validate_details(kind: Kind, raw: dict[str, Any] | None) -> dict[str, Any]:
    """Validate ``raw`` against ``kind``'s details model; return it as JSON-ready data.

    Raises a 422 :class:`~scheduler.api.errors.APIError` whose fields are named ``details.*``.
    Values keep JSON semantics (no "5" for 5) because the data are re-read as JSON strictly.
    """
    model = KINDS[kind].details
    try:
        parsed = model.model_validate_json(json.dumps(raw or {}), strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc, prefix="details") from None
    return parsed.model_dump(mode="json", exclude_none=True)
