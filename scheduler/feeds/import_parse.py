"""Reading a scanned iCalendar file into validated import items (no database involved).

Each top-level ``VEVENT`` becomes an :class:`ImportItem` or a list of problems; every
event is read, so one pass reports everything that is wrong with the file.
"""
from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, available_timezones

from icalendar import Calendar, Component
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from scheduler.api.errors import APIError
from scheduler.api.schemas import SUPPORTED_YEARS
from scheduler.events.kinds import KINDS, Kind
from scheduler.events.times import MAX_SPAN, Times, normalize_times, occurrence_starts
from scheduler.feeds.import_errors import ImportRejected, Problem
from scheduler.feeds.import_scan import ScannedCalendar
from scheduler.util.time import UTC

#: Our field names → the iCalendar property a problem with them comes from.
_PROPERTY_OF = {
    "starts_at": "DTSTART", "ends_at": "DTEND", "rrule": "RRULE", "timezone": "TZID", "uid": "UID",
    "title": "SUMMARY", "description": "DESCRIPTION", "venue": "LOCATION", "latitude": "GEO", "longitude": "GEO",
}
_QUOTES = str.maketrans("", "", "“”\"「」『』‘’' ")
_ONE_DAY = dt.timedelta(days=1)


class ImportItem(BaseModel):
    """One event of an imported calendar, checked and ready to create or update."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uid: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    venue: Annotated[str, StringConstraints(max_length=200)] = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    kind: Kind
    #: The kind was named by the event's CATEGORIES (else it is the importer's default).
    kind_from_categories: bool = False
    #: Start and end as given to the event operations (dates for all-day events, end inclusive).
    start: dt.datetime | dt.date
    end: dt.datetime | dt.date | None
    all_day: bool
    timezone: str
    rrule: str | None = None
    #: Excluded occurrences: their UTC starts, ISO 8601, as :attr:`Event.exdates` keeps them.
    exdates: tuple[str, ...] = ()
    cancelled: bool = False
    line: int | None = None
    times: Times


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def iana_zone(tzid: str) -> str | None:
    """The IANA zone a TZID names: the TZID itself, or the zone of a Windows name (Outlook's
    ``China Standard Time``); ``None`` when unknown (never a definition taken from the file)."""
    name = tzid.strip().strip('"')
    if name in _iana_names():
        return name
    mapped = WINDOWS_TO_OLSON.get(name)
    return mapped if mapped in _iana_names() else None


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _normal(name: str) -> str:
    return name.translate(_QUOTES).casefold()


_KIND_NAMES = {_normal(name): kind for kind, info in KINDS.items() for name in (kind.value, info.name_zh, info.name_en)}


def kind_from_categories(categories: list[str]) -> Kind | None:
    """The first category naming one of our kinds (key, Chinese or English name), if any."""
    for category in categories:
        kind = _KIND_NAMES.get(_normal(category))
        if kind is not None:
            return kind
    return None


@dataclass
class _EventReader:
    """Reads one VEVENT, collecting every problem instead of stopping at the first."""

    component: Component
    line: int | None
    default_kind: Kind
    default_zone: str
    extra_exdates: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    uid: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        self.errors = {name.upper(): message for name, message in self.component.errors if name}
        self.problems.extend(f"A line could not be read: {message}" for name, message in self.component.errors if not name)

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def one(self, name: str, *, required: bool = False) -> Any:
        """The property ``name`` given at most once and readable, or ``None``."""
        if name in self.errors:
            self.problem(f"{name}: {self.errors[name]}")
            return None
        value = self.component.get(name)
        if isinstance(value, list):
            self.problem(f"{name} is given {len(value)} times; once is allowed.")
            return None
        if value is None and required:
            self.problem(f"{name} is missing.")
        return value

    def many(self, name: str) -> list[Any]:
        """Every occurrence of the property ``name`` (readable ones only)."""
        if name in self.errors:
            self.problem(f"{name}: {self.errors[name]}")
            return []
        value = self.component.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def moment(self, name: str, prop: Any) -> tuple[dt.date | None, str | None]:
        """A DATE or DATE-TIME value as an aware datetime (or a date), with the IANA zone it was given in.

        ``TZID`` must name a known zone; UTC values give ``UTC``; floating times are read in
        the default zone.
        """
        value = prop.dt
        if not isinstance(value, dt.date):
            self.problem(f"{name} must be a date or a date and time.")
            return None, None
        if value.year not in SUPPORTED_YEARS:
            self.problem(f"{name}: the year {value.year} is out of range.")
            return None, None
        if not isinstance(value, dt.datetime):
            return value, None
        tzid = prop.params.get("TZID")
        if tzid:
            zone = iana_zone(str(tzid))
            if zone is None:
                self.problem(f"{name}: unknown time zone TZID={tzid}; use an IANA name such as Asia/Shanghai.")
                return None, None
            return value.replace(tzinfo=ZoneInfo(zone)), zone
        if value.tzinfo is None:
            return value.replace(tzinfo=ZoneInfo(self.default_zone)), self.default_zone
        return value.astimezone(UTC), "UTC"

    def end_from_dtend(self, start: dt.date, end: dt.date) -> dt.date | None:
        if not isinstance(start, dt.datetime):
            if isinstance(end, dt.datetime):
                self.problem("DTEND must be a date, as DTSTART is.")
                return None
            if end < start:
                self.problem("DTEND comes before DTSTART.")
                return None
            return start if end == start else end - _ONE_DAY  # iCalendar's end date is exclusive, ours inclusive
        if not isinstance(end, dt.datetime):
            self.problem("DTEND must be a date and time, as DTSTART is.")
            return None
        return end

    def end_from_duration(self, start: dt.date, prop: Any) -> dt.date | None:
        length = prop.dt
        if not isinstance(length, dt.timedelta):
            self.problem("DURATION must be a duration such as PT2H.")
            return None
        if length <= dt.timedelta(0) or length > MAX_SPAN:
            self.problem("DURATION must be positive and at most 366 days.")
            return None
        if not isinstance(start, dt.datetime):
            return start + _ONE_DAY * (max(1, math.ceil(length / _ONE_DAY)) - 1)
        return start + length

    def rule_text(self, rule: Any, zone: str) -> str | None:
        """The RRULE with UNTIL in UTC, as our rules need it (a date UNTIL ends with its day)."""
        rule = type(rule)(rule)
        if "UNTIL" in rule:
            until = rule["UNTIL"][0]
            if not isinstance(until, dt.date) or until.year not in SUPPORTED_YEARS:
                self.problem("RRULE: UNTIL is not a valid date.")
                return None
            if not isinstance(until, dt.datetime):
                until = dt.datetime.combine(until, dt.time(23, 59, 59))
            if until.tzinfo is None:
                until = until.replace(tzinfo=ZoneInfo(zone))
            rule["UNTIL"] = [until.astimezone(UTC)]
        text = rule.to_ical().decode()
        if len(text) > 500:
            self.problem("RRULE is longer than 500 characters.")
            return None
        return text

    def exdates(self, times: Times, zone: str, values: list[Any]) -> tuple[str, ...]:
        """The occurrences that EXDATE (or a cancelled RECURRENCE-ID) excludes; others are ignored."""
        if not times.rrule or not values:
            return ()
        occurrences = occurrence_starts(times.starts_at, zone, times.rrule)
        tz = ZoneInfo(zone)
        excluded: set[dt.datetime] = set()
        for prop in values:
            value, _ = self.moment("EXDATE", prop)
            if isinstance(value, dt.datetime):
                excluded.update(o for o in occurrences if o == value.astimezone(UTC))
            elif value is not None:
                excluded.update(o for o in occurrences if o.astimezone(tz).date() == value)
        if excluded and len(excluded) == len(occurrences):
            self.problem("EXDATE excludes every occurrence of the series.")
        return tuple(sorted(o.isoformat() for o in excluded))

    def read(self) -> ImportItem | None:
        """The event as an import item, or ``None`` (with :attr:`problems`) when it cannot be imported."""
        uid = self.one("UID", required=True)
        self.uid = str(uid).strip() if uid is not None else None
        if uid is not None and not self.uid:
            self.problem("UID is empty.")
        summary = self.one("SUMMARY", required=True)
        title = " ".join(str(summary).split()) if summary is not None else ""
        self.summary = _clip(title, 60) or None
        if summary is not None and not title:
            self.problem("SUMMARY is empty.")
        description = str(self.one("DESCRIPTION") or "").strip()
        location = " ".join(str(self.one("LOCATION") or "").split())
        geo = self.one("GEO")
        status = str(self.one("STATUS") or "").strip().upper()
        privacy = str(self.one("CLASS") or "").strip().upper()
        if privacy in ("PRIVATE", "CONFIDENTIAL"):
            self.problem(f"CLASS:{privacy}: private events are not imported into public calendars; leave them out of the file.")
        if self.many("RDATE"):
            self.problem("RDATE (extra dates of a series) is not supported: use RRULE, with EXDATE for dates left out.")
        categories = [str(cat) for prop in self.many("CATEGORIES") for cat in getattr(prop, "cats", [])]
        kind = kind_from_categories(categories)
        start_prop, end_prop, length_prop = self.one("DTSTART", required=True), self.one("DTEND"), self.one("DURATION")
        rules = self.many("RRULE")
        if len(rules) > 1:
            self.problem("Only one RRULE per event is supported.")
        exdate_values = [value for prop in self.many("EXDATE") for value in getattr(prop, "dts", [])] + self.extra_exdates

        start, zone = self.moment("DTSTART", start_prop) if start_prop is not None else (None, None)
        if start is None:
            return None
        all_day = not isinstance(start, dt.datetime)
        end: dt.date | None = None
        if end_prop is not None and length_prop is not None:
            self.problem("Give DTEND or DURATION, not both.")
        elif end_prop is not None:
            given, _ = self.moment("DTEND", end_prop)
            end = self.end_from_dtend(start, given) if given is not None else None
        elif length_prop is not None:
            end = self.end_from_duration(start, length_prop)
        if zone == "UTC" and rules and isinstance(start, dt.datetime):
            # A series anchored in UTC (Google writes them so) is meant in the calendar's local time:
            # kept in UTC it would be shown and texted in UTC wall time. Re-anchored in the zone
            # (the calendar's X-WR-TIMEZONE, else ours), each occurrence keeps its local time.
            local = ZoneInfo(self.default_zone)
            start = start.astimezone(local)
            end = end.astimezone(local) if isinstance(end, dt.datetime) else end
        if all_day or zone is None or zone == "UTC":
            zone = self.default_zone  # shown in the calendar's (or the city's) zone
        rule = self.rule_text(rules[0], zone) if len(rules) == 1 else None
        if self.problems:
            return None
        try:
            times = normalize_times(start, end, all_day=all_day, tz_name=zone, rule_text=rule)
        except APIError as exc:
            for name, message in exc.fields.items():
                self.problem(f"{_PROPERTY_OF.get(name, name)}: {message}")
            return None
        exdates = self.exdates(times, zone, exdate_values)
        try:
            item = ImportItem(
                uid=self.uid or "", title=_clip(title, 200), description=_clip(description, 10_000), venue=_clip(location, 200),
                latitude=getattr(geo, "latitude", None), longitude=getattr(geo, "longitude", None),
                kind=kind or self.default_kind, kind_from_categories=kind is not None,
                start=start, end=end, all_day=all_day, timezone=zone, rrule=times.rrule, exdates=exdates,
                cancelled=status == "CANCELLED", line=self.line, times=times,
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                name = str(error["loc"][0]) if error["loc"] else ""
                self.problem(f"{_PROPERTY_OF.get(name, name)}: {error['msg']}")
            return None
        return None if self.problems else item

    def report(self) -> list[Problem]:
        """The problems found, each naming the event and its line."""
        return [Problem(message, self.uid, self.summary, self.line) for message in self.problems]


def _load(scanned: ScannedCalendar) -> Calendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parser warns about guessed TZIDs; we refuse those anyway
        try:
            return Calendar.from_ical(scanned.text)
        except Exception as exc:  # noqa: BLE001  (a hostile file may break the parser in any way: never a 500)
            raise ImportRejected([Problem(f"Not a readable iCalendar file: {_clip(str(exc), 300)}")]) from None


def _uid_of(component: Component) -> str | None:
    value = component.get("UID")
    if value is None or isinstance(value, list):
        return None
    return str(value).strip() or None


def parse_calendar(
    scanned: ScannedCalendar, *, default_kind: Kind, default_zone: str, max_seconds: float = 20.0
) -> list[ImportItem]:
    """Read every event of ``scanned``; raise :class:`ImportRejected` listing all problems found.

    Reading stops with a problem after ``max_seconds``: a hostile recurrence rule can take
    seconds to expand (its filters never match), and a file may hold thousands.
    """
    deadline = time.monotonic() + max_seconds
    calendar = _load(scanned)
    # Google and Apple name the calendar's zone here: floating times are in it, not in ours
    declared = calendar.get("X-WR-TIMEZONE")
    default_zone = (iana_zone(str(declared)) if declared is not None and not isinstance(declared, list) else None) or default_zone
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    lines: list[int | None] = list(scanned.event_lines) if len(scanned.event_lines) == len(events) else [None] * len(events)
    problems: list[Problem] = []
    masters: list[tuple[Component, int | None]] = []
    first_line: dict[str, int | None] = {}
    cancelled_occurrences: dict[str, list[Any]] = {}
    overrides: list[tuple[str | None, Component, int | None]] = []
    for component, line in zip(events, lines):
        uid = _uid_of(component)
        if component.get("RECURRENCE-ID") is not None:
            overrides.append((uid, component, line))
            continue
        if uid is not None and uid in first_line:
            message = f"The UID is used by another event of the file too (line {first_line[uid]})."
            problems.append(Problem(message, uid, None, line))
            continue
        if uid is not None:
            first_line[uid] = line
        masters.append((component, line))
    for uid, component, line in overrides:
        summary = _clip(str(component.get("SUMMARY") or ""), 60) or None
        if uid is None or uid not in first_line:
            problems.append(Problem("RECURRENCE-ID refers to a series that is not in the file.", uid, summary, line))
        elif str(component.get("STATUS") or "").strip().upper() != "CANCELLED" or isinstance(component["RECURRENCE-ID"], list):
            problems.append(Problem(
                "A changed occurrence of a series (RECURRENCE-ID) cannot be imported: only whole series are, "
                "with EXDATE (or a cancelled RECURRENCE-ID) for occurrences left out.", uid, summary, line,
            ))
        else:
            cancelled_occurrences.setdefault(uid, []).append(component["RECURRENCE-ID"])
    items = []
    for component, line in masters:
        if time.monotonic() >= deadline:
            problems.append(Problem(
                f"Reading the events took longer than {max_seconds:g} s (recurrence rules too complex to expand); "
                "the rest of the file was not checked.", line=line,
            ))
            break
        cancelled = cancelled_occurrences.get(_uid_of(component) or "", [])
        reader = _EventReader(component, line, default_kind, default_zone, cancelled)
        item = reader.read()
        problems.extend(reader.report())
        if item is not None:
            items.append(item)
    if problems:
        raise ImportRejected(sorted(problems, key=lambda p: (p.line is None, p.line or 0)))
    return items
