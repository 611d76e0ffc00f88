"""iCalendar rendering as pure functions: event data in, bytes out.

Nothing here reads the database, the clock or the request, so the same data always
gives the same bytes. Each event renders to its own VEVENT bytes, which the caller may
keep and reuse; the calendar is those bytes between a header and the VTIMEZONEs.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as date_parser
from icalendar import Alarm, Calendar, Event, vCalAddress, vDuration, vText

from scheduler.events.kinds import CONTEST_STAGES, KINDS, SECTOR_NAMES, Kind
from scheduler.events.times import parse_rrule
from scheduler.feeds.import_parse import DETAILS_PROPERTY
from scheduler.feeds.vtimezone import vtimezone
from scheduler.util.time import UTC

PRODID = "-//Jiangmen Science & Technology Events//Scheduler 1.0//ZH"
#: Clients are asked to refresh every six hours.
REFRESH = dt.timedelta(hours=6)
#: VTIMEZONE definitions cover the years events may use, so they never depend on the data.
TZ_FIRST, TZ_LAST = dt.date(2000, 1, 1), dt.date(2100, 1, 1)


@dataclass(frozen=True)
class EventView:
    """What a feed shows of one event (read from the database, or built in memory)."""

    id: int
    uid: str
    kind: str
    title: str
    description: str
    venue: str
    address: str
    latitude: float | None
    longitude: float | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    all_day: bool
    timezone: str
    rrule: str | None
    exdates: tuple[str, ...]
    status: str
    details: Any
    sequence: int
    cancel_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    org_name_zh: str
    org_name_en: str
    #: For personal calendars: the participant holds a seat only provisionally (waitlist).
    tentative: bool = False


@dataclass(frozen=True)
class Links:
    """Where an event's page and registration live (absolute URLs)."""

    page: str
    organizer_email: str


@dataclass(frozen=True)
class CalendarMeta:
    """The calendar's own properties."""

    name: str
    description: str
    timezone: str


def _local(value: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return value.astimezone(tz)


def format_local(value: dt.datetime, tz: ZoneInfo) -> str:
    """``2024年5月18日 14:30`` in the event's time zone."""
    local = value.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def _detail_lines(view: EventView, tz: ZoneInfo) -> list[str]:
    details = view.details or {}
    lines = []
    when = lambda text: format_local(dt.datetime.fromisoformat(text), tz)  # noqa: E731
    if view.kind == Kind.STUDY_TOUR:
        lines.append(f"集合地点 Meeting point: {details.get('meeting_point', '')}")
        if details.get("meeting_time"):
            lines.append(f"集合时间 Meeting time: {when(details['meeting_time'])}")
        if details.get("age_min") is not None or details.get("age_max") is not None:
            lines.append(f"适合年龄 Ages: {details.get('age_min', '')}–{details.get('age_max', '')}")
        for stop in details.get("itinerary", []):
            lines.append(f"行程 Itinerary: {stop.get('time', '')} {stop['place']} {stop.get('note', '')}".rstrip())
    elif view.kind == Kind.MATCHMAKING:
        zh, en = SECTOR_NAMES.get(details.get("sector", ""), (details.get("sector", ""), ""))
        lines.append(f"领域 Sector: {zh} {en}".rstrip())
        if details.get("partners"):
            lines.append("合作单位 Partners: " + "、".join(details["partners"]))
    elif view.kind == Kind.CONTEST:
        for key, (zh, en) in CONTEST_STAGES.items():
            if details.get(key):
                lines.append(f"{zh} {en}: {when(details[key])}")
    else:
        if details.get("theme"):
            lines.append(f"主题 Theme: {details['theme']}")
        for session in details.get("sessions", []):
            lines.append(f"分会场 Session: {when(session['starts_at'])} {session['title']} {session.get('venue', '')}".rstrip())
        if details.get("booths"):
            lines.append(f"展位 Booths: {details['booths']}")
    return lines


def _description(view: EventView, links: Links, tz: ZoneInfo) -> str:
    info = KINDS[Kind(view.kind)]
    parts = []
    if view.status == "cancelled":
        parts.append(f"【已取消 Cancelled】{view.cancel_reason or ''}".rstrip())
    if view.tentative:
        parts.append("【候补 Waitlisted】您在候补名单中,有空位时将通知您。You are on the waitlist.")
    if view.description:
        parts.append(view.description)
    parts.append("\n".join([f"{info.name_zh} · {info.name_en}", f"主办 Organizer: {view.org_name_zh} · {view.org_name_en}",
                            *_detail_lines(view, tz)]))
    parts.append(f"详情与报名 Details & registration: {links.page}")
    return "\n\n".join(parts)


def _status(view: EventView) -> str:
    if view.status == "cancelled":
        return "CANCELLED"
    return "TENTATIVE" if view.tentative else "CONFIRMED"


def render_event(view: EventView, links: Links, alarms: tuple[dt.timedelta, ...] = ()) -> bytes:
    """Return the VEVENT of one event, folded and CRLF-terminated."""
    tz = ZoneInfo(view.timezone)
    info = KINDS[Kind(view.kind)]
    event = Event()
    event.add("uid", view.uid)
    event.add("dtstamp", view.updated_at.astimezone(UTC))
    starts_at, ends_at = _first_occurrence(view)
    if view.all_day:
        event.add("dtstart", _local(starts_at, tz).date())
        event.add("dtend", _local(ends_at, tz).date())
    else:
        event.add("dtstart", _local(starts_at, tz))
        event.add("dtend", _local(ends_at, tz))
    if view.rrule:
        event.add("rrule", rrule_value(view.rrule, tz, all_day=view.all_day))
        for stamp in view.exdates:  # one EXDATE each: of the same value type (and TZID) as DTSTART
            start = dt.datetime.fromisoformat(stamp).astimezone(tz)
            event.add("exdate", start.date() if view.all_day else start)
    prefix = "[已取消 Cancelled] " if view.status == "cancelled" else ""
    event.add("summary", prefix + view.title)
    event.add("description", _description(view, links, tz))
    location = " ".join(part for part in (view.venue, view.address) if part)
    if location:
        event.add("location", location)
    if view.latitude is not None and view.longitude is not None:
        event.add("geo", (view.latitude, view.longitude))
    event.add("url", links.page)
    event.add("categories", [info.name_zh, info.name_en])
    if view.details:  # the kind's details, so that this calendar can be imported again (feeds/import_parse)
        event.add(DETAILS_PROPERTY, vText(json.dumps(view.details, ensure_ascii=False, sort_keys=True, separators=(",", ":"))))
    organizer = vCalAddress(f"mailto:{links.organizer_email}")
    organizer.params["cn"] = vText(f"{view.org_name_zh} {view.org_name_en}")
    event.add("organizer", organizer)
    event.add("status", _status(view))
    event.add("sequence", view.sequence)
    event.add("created", view.created_at.astimezone(UTC))
    event.add("last-modified", view.updated_at.astimezone(UTC))
    event.add("transp", "OPAQUE")
    for offset in alarms if view.status != "cancelled" else ():  # no reminder of what won't happen
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", view.title)
        alarm.add("trigger", -offset)
        event.add_component(alarm)
    return event.to_ical()


def _first_occurrence(view: EventView) -> tuple[dt.datetime, dt.datetime]:
    """The start and end DTSTART/DTEND show: the series' first occurrence.

    The API accepts a start the rule does not produce (a Saturday start with ``BYDAY=MO``); the
    application's series (dateutil's) then begins at the rule's first match. RFC 5545 leaves
    such a set undefined and clients differ (ical.js counts DTSTART as an occurrence, dateutil
    does not), so the feed starts the series where the application does.
    """
    first = next(iter(parse_rrule(view.rrule, view.starts_at.astimezone(ZoneInfo(view.timezone)))), None) if view.rrule else None
    if first is None:
        return view.starts_at, view.ends_at
    first = first.astimezone(UTC)
    return first, first + (view.ends_at - view.starts_at)


def _until(text: str, tz: ZoneInfo, all_day: bool) -> dt.date | dt.datetime:
    """UNTIL with DTSTART's value type (RFC 5545 3.3.10): a DATE for all-day series, else UTC.

    The application's rules carry UNTIL as an instant (``20240630T155959Z``); a series whose
    occurrences start at local midnight includes every day whose midnight is not after it.
    """
    value = date_parser.parse(text)
    if value.tzinfo is None:  # a floating or date UNTIL (not made by the API): read in the event's zone
        value = value.replace(tzinfo=tz)
    return value.astimezone(tz).date() if all_day else value.astimezone(UTC)


#: Rule parts whose values are a set of numbers, written in ascending order.
_NUMBER_SETS = {"BYMONTH", "BYMONTHDAY", "BYSETPOS"}


def rrule_value(text: str, tz: ZoneInfo, *, all_day: bool) -> dict[str, list[Any]]:
    """The stored rule as a dict for ``icalendar``'s vRecur, UNTIL typed as RFC 5545 requires.

    Number lists are sorted: the order means nothing in RFC 5545, but ical.js expects them
    ascending: with ``BYMONTHDAY=31,2`` (or ``31,-1`` beside BYDAY) it skips occurrences.
    """
    rule: dict[str, list[Any]] = {}
    for part in text.strip().removeprefix("RRULE:").split(";"):
        key, _, value = part.partition("=")
        if key == "UNTIL":
            rule[key] = [_until(value, tz, all_day)]
        elif key in _NUMBER_SETS:
            rule[key] = sorted(value.split(","), key=int)
        else:
            rule[key] = value.split(",")
    if rule.get("FREQ") == ["MONTHLY"] and "BYMONTH" in rule and "BYSETPOS" not in rule and rule.get("INTERVAL", ["1"]) == ["1"]:
        # The same set, written as ical.js (Thunderbird) reads it right: its MONTHLY walk with
        # BYMONTH=1,2;BYDAY=MO lists a February start's Mondays twice.
        rule["FREQ"] = ["YEARLY"]
        rule.pop("INTERVAL", None)
    return rule


@lru_cache(maxsize=32)
def timezone_block(tzid: str) -> bytes:
    """The VTIMEZONE of ``tzid`` for the years events may use, in yearly-RRULE form
    (see :mod:`scheduler.feeds.vtimezone`; Asia/Shanghai: one +0800 STANDARD block)."""
    return vtimezone(tzid, TZ_FIRST, TZ_LAST).to_ical()


def calendar_head(meta: CalendarMeta) -> bytes:
    """The calendar's properties, up to where its components go."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", vText(meta.name))
    cal.add("x-wr-calname", vText(meta.name))  # X- properties are TEXT too: escape them alike
    cal.add("description", vText(meta.description))
    cal.add("x-wr-caldesc", vText(meta.description))
    # No X-WR-TIMEZONE: Google Calendar and the x-wr-timezone convention (recurring-ical-events)
    # move every UTC ("Z") time into that zone, so a UTC series with BYDAY=MO would recur on
    # Shanghai's Mondays. Every time here carries its TZID or Z, so the hint is not needed.
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))
    body = cal.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert body.endswith(end)
    return body[: -len(end)]


def render_calendar(meta: CalendarMeta, events: Iterable[bytes], tzids: Iterable[str]) -> bytes:
    """Join the calendar's head, the VTIMEZONEs (of every TZID used, and of the calendar's own zone), and the events.

    The calendar's own zone is always there, so a calendar without events still holds the one
    component RFC 5545 requires (``icalendar``'s ``Calendar.validate()`` refuses an empty VCALENDAR).
    """
    parts = [calendar_head(meta)]
    parts.extend(timezone_block(tzid) for tzid in sorted({*tzids, meta.timezone}))
    parts.extend(events)
    parts.append(b"END:VCALENDAR\r\n")
    return b"".join(parts)


def build_calendar(meta: CalendarMeta, views: list[EventView], links: dict[int, Links], alarms: tuple[dt.timedelta, ...] = ()) -> bytes:
    """Render a whole calendar from event views (no reuse of earlier renderings)."""
    return render_calendar(meta, (render_event(v, links[v.id], alarms) for v in views), (v.timezone for v in views if not v.all_day))
