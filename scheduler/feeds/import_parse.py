"""Reading a scanned iCalendar file into validated import items (no database involved).

Each top-level ``VEVENT`` becomes an :class:`ImportItem` or a list of problems; every
event is read, so one pass reports everything that is wrong with the file, and the good
events are imported even when others are not (:class:`Reading`).

What ordinary calendars hold and how it is read:

- a moved or changed occurrence (``RECURRENCE-ID``) becomes a one-off event linked to its
  series (:attr:`ImportItem.series_uid`), and the series leaves that occurrence out; a
  cancelled one is only left out;
- a series without an end (no ``COUNT`` or ``UNTIL``) is kept ``IMPORT_OPEN_RULE_DAYS``
  (365) ahead, from its start or, once that is past, from its first occurrence this month;
- a zero-length event (``DTEND`` = ``DTSTART``) lasts one minute;
- a zone only the file defines is matched to an IANA zone (:mod:`scheduler.feeds.import_zones`);
- ``CLASS:PRIVATE`` and ``CONFIDENTIAL`` events are left out, each named in the report.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar, Component
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from scheduler.api.errors import APIError
from scheduler.api.schemas import SUPPORTED_YEARS
from scheduler.events.kinds import KINDS, Kind
from scheduler.events.times import DEFAULT_DURATION, MAX_OCCURRENCES, MAX_SPAN, Times, normalize_times, occurrence_starts
from scheduler.feeds.import_errors import N_, ImportRejected, Problem
from scheduler.feeds.import_scan import ScannedCalendar
from scheduler.feeds.import_zones import iana_zone, zone_of_definition
from scheduler.util.text import strip_invisible
from scheduler.util.time import UTC, now

__all__ = ["DETAILS_PROPERTY", "ImportItem", "Reading", "iana_zone", "kind_from_categories", "parse_calendar"]

#: Our field names → the iCalendar property a problem with them comes from.
_PROPERTY_OF = {
    "starts_at": "DTSTART", "ends_at": "DTEND", "rrule": "RRULE", "timezone": "TZID", "uid": "UID",
    "title": "SUMMARY", "description": "DESCRIPTION", "venue": "LOCATION", "latitude": "GEO", "longitude": "GEO",
}
_QUOTES = str.maketrans("", "", "“”\"「」『』‘’' ")
_ONE_DAY = dt.timedelta(days=1)
#: How long a zero-length event lasts here (an event must end after it starts).
ZERO_LENGTH = dt.timedelta(minutes=1)
#: The kind's details as JSON: written by this application's feeds, so that its own
#: calendars can be imported again (a matchmaking fair needs its sector, a contest its dates).
DETAILS_PROPERTY = "X-SCHEDULER-DETAILS"
_TEXT_ESCAPE = re.compile(r"\\([\\;,Nn])")
#: The summary prefix the feeds give cancelled events (removed on import: STATUS says it).
CANCELLED_PREFIX = "[已取消 Cancelled] "


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
    #: The kind's details, when the file carries them (:data:`DETAILS_PROPERTY`); checked when planned.
    details: dict[str, Any] | None = None
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
    #: For a moved occurrence: the UID of its series, and the start it had there (UTC).
    series_uid: str | None = None
    recurrence_id: dt.datetime | None = None
    times: Times


@dataclass(frozen=True)
class Reading:
    """What a calendar file holds: the events to import, the ones left out (each with why), and
    notes on how some were read (an open-ended series' horizon, a zone matched by its offsets)."""

    items: list[ImportItem]
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


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


def _basic(moment: dt.date) -> str:
    """``20250301T060000Z`` (UTC) or ``20250301``: how a moved occurrence's UID names it."""
    if isinstance(moment, dt.datetime):
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return moment.strftime("%Y%m%d")


def occurrence_uid(series_uid: str, recurrence_id: dt.date) -> str:
    """The UID a moved occurrence is kept under: its series' UID and its original start (stable, so
    importing again updates it)."""
    suffix = "/" + _basic(recurrence_id)
    return series_uid[: 255 - len(suffix)] + suffix


@dataclass
class _Context:
    """What every event of one file is read with."""

    scanned: ScannedCalendar
    default_kind: Kind
    default_zone: str
    open_rule_days: int
    today: dt.datetime
    notes: list[Problem] = field(default_factory=list)


@dataclass
class _EventReader:
    """Reads one VEVENT, collecting every problem instead of stopping at the first."""

    component: Component
    line: int | None
    context: _Context
    extra_exdates: list[Any] = field(default_factory=list)
    #: For a moved occurrence: its series' item (kind and UID come from it).
    series: ImportItem | None = None
    problems: list[Problem] = field(default_factory=list)
    uid: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        self.errors = {name.upper(): message for name, message in self.component.errors if name}
        for name, message in self.component.errors:
            if not name:
                self.problem(N_("A line could not be read: %(error)s"), error=message)

    def problem(self, message: str, **params: Any) -> None:
        self.problems.append(Problem(message, self.uid, self.summary, self.line, params=params))

    def note(self, message: str, **params: Any) -> None:
        self.context.notes.append(Problem(message, self.uid, self.summary, self.line, params=params))

    def one(self, name: str, *, required: bool = False) -> Any:
        """The property ``name`` given at most once and readable, or ``None``."""
        if name in self.errors:
            self.problem(N_("%(property)s: %(error)s"), property=name, error=self.errors[name])
            return None
        value = self.component.get(name)
        if isinstance(value, list):
            self.problem(N_("%(property)s is given %(count)s times; once is allowed."), property=name, count=len(value))
            return None
        if value is None and required:
            self.problem(N_("%(property)s is missing."), property=name)
        return value

    def many(self, name: str) -> list[Any]:
        """Every occurrence of the property ``name`` (readable ones only)."""
        if name in self.errors:
            self.problem(N_("%(property)s: %(error)s"), property=name, error=self.errors[name])
            return []
        value = self.component.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def zone_of(self, name: str, tzid: str, year: int) -> str | None:
        """The IANA zone of a TZID: by name, else by the file's VTIMEZONE of that TZID."""
        zone = iana_zone(tzid)
        if zone is not None:
            return zone
        block = self.context.scanned.zones.get(tzid.strip().strip('"'))
        if block is not None:
            zone = zone_of_definition(block, year, (self.context.default_zone,))
            if zone is not None:
                self.note(N_("The time zone “%(tzid)s” defined in the file is read as %(zone)s (the same offsets)."),
                          tzid=tzid, zone=zone)
                return zone
            self.problem(N_("%(property)s: the time zone “%(tzid)s” defined in the file matches no known zone."),
                         property=name, tzid=tzid)
            return None
        self.problem(N_("%(property)s: unknown time zone TZID=%(tzid)s; use an IANA name such as Asia/Shanghai."),
                     property=name, tzid=tzid)
        return None

    def moment(self, name: str, prop: Any) -> tuple[dt.date | None, str | None]:
        """A DATE or DATE-TIME value as an aware datetime (or a date), with the IANA zone it was given in.

        ``TZID`` must name a known zone (or one the file defines); UTC values give ``UTC``;
        floating times are read in the default zone.
        """
        value = prop.dt
        if not isinstance(value, dt.date):
            self.problem(N_("%(property)s must be a date or a date and time."), property=name)
            return None, None
        if value.year not in SUPPORTED_YEARS:
            self.problem(N_("%(property)s: the year %(year)s is out of range."), property=name, year=value.year)
            return None, None
        if not isinstance(value, dt.datetime):
            return value, None
        tzid = prop.params.get("TZID")
        if tzid:
            zone = self.zone_of(name, str(tzid), value.year)
            if zone is None:
                return None, None
            return value.replace(tzinfo=ZoneInfo(zone)), zone
        if value.tzinfo is None:
            return value.replace(tzinfo=ZoneInfo(self.context.default_zone)), self.context.default_zone
        return value.astimezone(UTC), "UTC"

    def end_from_dtend(self, start: dt.date, end: dt.date) -> dt.date | None:
        if not isinstance(start, dt.datetime):
            if isinstance(end, dt.datetime):
                self.problem(N_("DTEND must be a date, as DTSTART is."))
                return None
            if end < start:
                self.problem(N_("DTEND comes before DTSTART."))
                return None
            return start if end == start else end - _ONE_DAY  # iCalendar's end date is exclusive, ours inclusive
        if not isinstance(end, dt.datetime):
            self.problem(N_("DTEND must be a date and time, as DTSTART is."))
            return None
        if end == start:
            return self.zero_length(start)
        return end

    def zero_length(self, start: dt.datetime) -> dt.datetime:
        self.note(N_("A zero-length event: imported as lasting one minute."))
        return start + ZERO_LENGTH

    def end_from_duration(self, start: dt.date, prop: Any) -> dt.date | None:
        length = prop.dt
        if not isinstance(length, dt.timedelta):
            self.problem(N_("DURATION must be a duration such as PT2H."))
            return None
        if length < dt.timedelta(0) or length > MAX_SPAN:
            self.problem(N_("DURATION must be positive and at most 366 days."))
            return None
        if not isinstance(start, dt.datetime):
            return start + _ONE_DAY * (max(1, math.ceil(length / _ONE_DAY)) - 1)
        return start + length if length else self.zero_length(start)

    def rule_text(self, rule: Any, zone: str) -> str | None:
        """The RRULE with UNTIL in UTC, as our rules need it (a date UNTIL ends with its day)."""
        rule = type(rule)(rule)
        if "UNTIL" in rule:
            until = rule["UNTIL"][0]
            if not isinstance(until, dt.date) or until.year not in SUPPORTED_YEARS:
                self.problem(N_("RRULE: UNTIL is not a valid date."))
                return None
            if not isinstance(until, dt.datetime):
                until = dt.datetime.combine(until, dt.time(23, 59, 59))
            if until.tzinfo is None:
                until = until.replace(tzinfo=ZoneInfo(zone))
            rule["UNTIL"] = [until.astimezone(UTC)]
        text = rule.to_ical().decode()
        if len(text) > 500:
            self.problem(N_("RRULE is longer than 500 characters."))
            return None
        return text

    def bounded(self, rule: str, start: dt.date, end: dt.date | None, zone: str,
                ) -> tuple[str, dt.date, dt.date | None] | None:
        """An open-ended series (no COUNT or UNTIL) kept :attr:`_Context.open_rule_days` ahead.

        From its start; once that is past, from its first occurrence this month (so importing
        again within a month changes nothing, and a later import moves it on).
        """
        tz = ZoneInfo(zone)
        local = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time(0), tzinfo=tz)
        if isinstance(start, dt.datetime):
            length = (end - start) if isinstance(end, dt.datetime) else DEFAULT_DURATION
        else:
            length = _ONE_DAY * (((end or start) - start).days + 1)
        month = self.context.today.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        try:
            series = rrulestr(rule, dtstart=local.astimezone(tz).replace(tzinfo=None))
            first = series.after(month.replace(tzinfo=None), inc=True) if local < month else local.replace(tzinfo=None)
        except (ValueError, TypeError, KeyError) as exc:
            self.problem(N_("RRULE: %(problem)s"), problem=str(exc))
            return None
        if first is None:
            self.problem(N_("RRULE: %(problem)s"), problem="The rule gives no occurrence.")
            return None
        horizon = first + dt.timedelta(days=self.context.open_rule_days)
        series = rrulestr(rule, dtstart=first)
        kept = [occ for occ in islice(series, MAX_OCCURRENCES) if occ < horizon and occ + length - first <= MAX_SPAN]
        last = kept[-1].replace(tzinfo=tz)
        until = last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        anchored = first.replace(tzinfo=tz)
        self.note(N_("A series without an end: imported from %(first)s to %(last)s (%(days)s days ahead); "
                     "import the calendar again to extend it."),
                  first=anchored.date().isoformat(), last=last.date().isoformat(), days=self.context.open_rule_days)
        if isinstance(start, dt.datetime):
            return f"{rule};UNTIL={until}", anchored, (anchored + (end - start) if isinstance(end, dt.datetime) else end)
        new_start = anchored.date()
        return f"{rule};UNTIL={until}", new_start, (new_start + (end - start) if end is not None else None)

    def exdates(self, times: Times, zone: str, values: list[Any]) -> tuple[str, ...]:
        """The occurrences that EXDATE (or a moved or cancelled RECURRENCE-ID) excludes; others are ignored."""
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
            self.problem(N_("EXDATE excludes every occurrence of the series."))
        return tuple(sorted(o.isoformat() for o in excluded))

    def details(self) -> dict[str, Any] | None:
        value = self.one(DETAILS_PROPERTY)
        if value is None:
            return None
        try:  # an X- property is read as it stands: its TEXT escapes (RFC 5545 3.3.11) are undone here
            details = json.loads(_TEXT_ESCAPE.sub(lambda m: "\n" if m[1] in "Nn" else m[1], str(value)))
        except ValueError:
            details = None
        if not isinstance(details, dict):
            self.problem(N_("%(property)s is not a JSON object."), property=DETAILS_PROPERTY)
            return None
        return details

    def read(self) -> ImportItem | None:
        """The event as an import item, or ``None`` (with :attr:`problems`) when it cannot be imported."""
        uid = self.one("UID", required=True)
        self.uid = str(uid).strip() if uid is not None else None
        status = str(self.one("STATUS") or "").strip().upper()
        summary = self.one("SUMMARY", required=True)
        title = " ".join(strip_invisible(str(summary)).split()) if summary is not None else ""
        if status == "CANCELLED":
            title = title.removeprefix(CANCELLED_PREFIX.strip()).strip() or title
        self.summary = _clip(title, 60) or None
        recurrence = self.component.get("RECURRENCE-ID")
        if self.series is not None and recurrence is not None:
            self.uid = occurrence_uid(self.series.uid, recurrence.dt)
        if uid is not None and not self.uid:
            self.problem(N_("UID is empty."))
        if summary is not None and not title:
            self.problem(N_("SUMMARY is empty."))
        description = strip_invisible(str(self.one("DESCRIPTION") or "")).strip()
        location = " ".join(strip_invisible(str(self.one("LOCATION") or "")).split())
        geo = self.one("GEO")
        privacy = str(self.one("CLASS") or "").strip().upper()
        if privacy in ("PRIVATE", "CONFIDENTIAL"):
            self.problem(N_("CLASS:%(class)s: private events are not imported into public calendars."), **{"class": privacy})
        if self.many("RDATE"):
            self.problem(N_("RDATE (extra dates of a series) is not supported: use RRULE, with EXDATE for dates left out."))
        categories = [str(cat) for prop in self.many("CATEGORIES") for cat in getattr(prop, "cats", [])]
        kind = kind_from_categories(categories)
        details = self.details()
        start_prop, end_prop, length_prop = self.one("DTSTART", required=True), self.one("DTEND"), self.one("DURATION")
        rules = self.many("RRULE")
        if len(rules) > 1:
            self.problem(N_("Only one RRULE per event is supported."))
        if rules and self.series is not None:
            self.problem(N_("A moved occurrence (RECURRENCE-ID) cannot be a series itself (RRULE)."))
        exdate_values = [value for prop in self.many("EXDATE") for value in getattr(prop, "dts", [])] + self.extra_exdates

        start, zone = self.moment("DTSTART", start_prop) if start_prop is not None else (None, None)
        if start is None:
            return None
        all_day = not isinstance(start, dt.datetime)
        end: dt.date | None = None
        if end_prop is not None and length_prop is not None:
            self.problem(N_("Give DTEND or DURATION, not both."))
        elif end_prop is not None:
            given, _ = self.moment("DTEND", end_prop)
            end = self.end_from_dtend(start, given) if given is not None else None
        elif length_prop is not None:
            end = self.end_from_duration(start, length_prop)
        if zone == "UTC" and rules and isinstance(start, dt.datetime):
            # A series anchored in UTC (Google writes them so) is meant in the calendar's local time:
            # kept in UTC it would be shown and texted in UTC wall time. Re-anchored in the zone
            # (the calendar's X-WR-TIMEZONE, else ours), each occurrence keeps its local time.
            local = ZoneInfo(self.context.default_zone)
            start = start.astimezone(local)
            end = end.astimezone(local) if isinstance(end, dt.datetime) else end
        if all_day or zone is None or zone == "UTC":
            zone = self.context.default_zone  # shown in the calendar's (or the city's) zone
        rule = self.rule_text(rules[0], zone) if len(rules) == 1 else None
        if self.problems:
            return None
        if rule and "COUNT=" not in rule and "UNTIL=" not in rule:
            bounded = self.bounded(rule, start, end, zone)
            if bounded is None:
                return None
            rule, start, end = bounded
        return self.item(start, end, all_day, zone, rule, exdate_values, recurrence, status=status, title=title,
                         description=description, location=location, geo=geo,
                         kind=kind or (self.series.kind if self.series else None), details=details)

    def item(self, start: dt.date, end: dt.date | None, all_day: bool, zone: str, rule: str | None,
             exdate_values: list[Any], recurrence: Any, *, status: str, title: str, description: str, location: str,
             geo: Any, kind: Kind | None, details: dict[str, Any] | None) -> ImportItem | None:
        try:
            times = normalize_times(start, end, all_day=all_day, tz_name=zone, rule_text=rule)
        except APIError as exc:
            for name, message in exc.fields.items():
                self.problem(N_("%(property)s: %(problem)s"), property=_PROPERTY_OF.get(name, name), problem=message)
            return None
        exdates = self.exdates(times, zone, exdate_values)
        original = None
        if self.series is not None and recurrence is not None:
            value = recurrence.dt
            original = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time(0), tzinfo=ZoneInfo(zone))
            original = (original if original.tzinfo else original.replace(tzinfo=ZoneInfo(zone))).astimezone(UTC)
        try:
            item = ImportItem(
                uid=self.uid or "", title=_clip(title, 200), description=_clip(description, 10_000), venue=_clip(location, 200),
                latitude=getattr(geo, "latitude", None), longitude=getattr(geo, "longitude", None),
                kind=kind or self.context.default_kind, kind_from_categories=kind is not None, details=details,
                start=start, end=end, all_day=all_day, timezone=zone, rrule=times.rrule, exdates=exdates,
                cancelled=status == "CANCELLED", line=self.line, times=times,
                series_uid=self.series.uid if self.series else None, recurrence_id=original,
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                name = str(error["loc"][0]) if error["loc"] else ""
                self.problem(N_("%(property)s: %(problem)s"), property=_PROPERTY_OF.get(name, name), problem=error["msg"])
            return None
        return None if self.problems else item


def _load(scanned: ScannedCalendar) -> Calendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parser warns about guessed TZIDs; we refuse those anyway
        try:
            return Calendar.from_ical(scanned.text)
        except Exception as exc:  # noqa: BLE001  (a hostile file may break the parser in any way: never a 500)
            raise ImportRejected([Problem(N_("Not a readable iCalendar file: %(error)s"), params={"error": _clip(str(exc), 300)})]) from None


def _uid_of(component: Component) -> str | None:
    value = component.get("UID")
    if value is None or isinstance(value, list):
        return None
    return str(value).strip() or None


def _summary_of(component: Component) -> str | None:
    return _clip(" ".join(str(component.get("SUMMARY") or "").split()), 60) or None


def parse_calendar(
    scanned: ScannedCalendar, *, default_kind: Kind, default_zone: str, max_seconds: float = 20.0,
    open_rule_days: int = 365, today: dt.datetime | None = None,
) -> Reading:
    """Read every event of ``scanned``: the good ones as items, each other one as a problem.

    A file that cannot be read at all raises :class:`ImportRejected`. Reading stops with a
    problem after ``max_seconds``: a hostile recurrence rule can take seconds to expand (its
    filters never match), and a file may hold thousands.
    """
    deadline = time.monotonic() + max_seconds
    calendar = _load(scanned)
    # Google and Apple name the calendar's zone here: floating times are in it, not in ours
    declared = calendar.get("X-WR-TIMEZONE")
    default_zone = (iana_zone(str(declared)) if declared is not None and not isinstance(declared, list) else None) or default_zone
    context = _Context(scanned, default_kind, default_zone, open_rule_days, today or now())
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    lines: list[int | None] = list(scanned.event_lines) if len(scanned.event_lines) == len(events) else [None] * len(events)
    problems: list[Problem] = []
    masters: list[tuple[Component, int | None]] = []
    first_line: dict[str, int | None] = {}
    left_out: dict[str, list[Any]] = {}  # series UID → RECURRENCE-IDs of its moved or cancelled occurrences
    moved: list[tuple[str, Component, int | None]] = []
    for component, line in zip(events, lines):
        uid = _uid_of(component)
        recurrence = component.get("RECURRENCE-ID")
        if recurrence is not None:
            if uid is None or isinstance(recurrence, list):
                problems.append(Problem(N_("RECURRENCE-ID must be given once, with the UID of its series."), uid,
                                        _summary_of(component), line))
                continue
            left_out.setdefault(uid, []).append(recurrence)
            if str(component.get("STATUS") or "").strip().upper() != "CANCELLED":
                moved.append((uid, component, line))
            continue
        if uid is not None and uid in first_line:
            problems.append(Problem(N_("The UID is used by another event of the file too (line %(line)s)."), uid, None, line,
                                    params={"line": first_line[uid]}))
            continue
        if uid is not None:
            first_line[uid] = line
        masters.append((component, line))
    items: list[ImportItem] = []
    series: dict[str, ImportItem] = {}
    pending = [(component, line, None) for component, line in masters]
    pending += [(component, line, uid) for uid, component, line in moved]
    for number, (component, line, series_uid) in enumerate(pending):
        if time.monotonic() >= deadline:
            problems.append(Problem(
                N_("Reading the events took longer than %(seconds)s s (recurrence rules too complex to expand); "
                   "the %(count)s events from here on were not imported."), line=line,
                params={"seconds": f"{max_seconds:g}", "count": len(pending) - number},
            ))
            break
        if series_uid is not None and (series_uid not in series or not series[series_uid].rrule):
            if series_uid in series:
                reason = N_("RECURRENCE-ID refers to an event that does not repeat.")
            elif series_uid in first_line:
                reason = N_("Its series was not imported (see the problems of that event).")
            else:
                reason = N_("RECURRENCE-ID refers to a series that is not in the file.")
            problems.append(Problem(reason, series_uid, _summary_of(component), line))
            continue
        uid = _uid_of(component) or ""
        reader = _EventReader(component, line, context, [] if series_uid else left_out.get(uid, []),
                              series.get(series_uid or ""))
        item = reader.read()
        problems.extend(reader.problems)
        if item is None:
            continue
        items.append(item)
        if series_uid is None:
            series[item.uid] = item
        elif series_uid is not None:
            reader.note(N_("A moved occurrence of a series: imported as a one-off event linked to the series."))
    order = lambda p: (p.line is None, p.line or 0)  # noqa: E731
    return Reading(items, sorted(problems, key=order), sorted(context.notes, key=order))
