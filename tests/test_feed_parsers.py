"""The feeds as independent parsers read them, not only the library that wrote them.

Every case builds its events with the factories and operations, fetches the real feed over
HTTP, and checks what a subscriber would notice in each of four parsers:

* ``icalendar`` — ``Calendar.from_ical`` then ``validate()``, no component ``errors``, no
  TZID without its VTIMEZONE; recurring events expanded by ``recurring-ical-events``;
* ``vobject`` — ``readOne(..., validate=True)``; recurrences through ``getrruleset()``;
* ``ical`` — the strict parser (``IcsCalendarStream.calendar_from_ics``, no compat mode);
  recurrences through its ``timeline``;
* ``ical.js`` — Mozilla's parser run with Node (``tests/js/parse.mjs``); recurrences through
  ``ICAL.Event#iterator``. Skipped, with the reason, when Node or ical.js is not installed.

Each test runs once per parser (``test_x[vobject]``...), and always checks the raw bytes too:
CRLF line ends, physical lines of at most 75 octets, each decodable as UTF-8 on its own.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from tests.pages import prove_number
import recurring_ical_events
import vobject
from flask.testing import FlaskClient
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from scheduler.events import operations as ops
from scheduler.extensions import db
from tests.factories import create_event, create_org

SHANGHAI = ZoneInfo("Asia/Shanghai")
EIGHT_HOURS = dt.timedelta(hours=8)
JS_DIR = Path(__file__).parent / "js"
PARSE_MJS = JS_DIR / "parse.mjs"
ICALJS = JS_DIR / "node_modules" / "ical.js"
#: Recurring events are expanded within this window (wide enough for every series here).
WINDOW = (dt.date(2020, 1, 1), dt.date(2030, 1, 1))

#: Real commas, semicolons and a backslash: all three must be escaped in TEXT, and come back.
TITLE = "走进实验室,第1期;报名\\说明"
#: Newlines too (escaped as \n in the feed), and the same specials once more.
DESCRIPTION = "报名须知:\n1. 请携带身份证,准时到达;\n2. 路径 C:\\科普\\资料\n\n欢迎参加!"


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A wall-clock time in Asia/Shanghai."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# --- what a parser understood ------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One VEVENT as a parser understood it."""

    uid: str
    summary: str
    description: str
    location: str | None
    status: str
    sequence: int
    start: dt.date | dt.datetime
    end: dt.date | dt.datetime
    #: TRIGGERs of the VALARMs, relative to the start (negative: before it).
    alarms: tuple[dt.timedelta, ...]
    #: Starts of the occurrences of a recurring event, cancelled ones left out (empty if single).
    occurrences: tuple[dt.date | dt.datetime, ...]


@dataclass(frozen=True)
class Parsed:
    """A whole calendar as a parser understood it."""

    prodid: str
    version: str
    events: list[Seen]

    def event(self, uid: str) -> Seen:
        """The one VEVENT with ``uid`` (a UID must not repeat in a feed)."""
        found = [e for e in self.events if e.uid == uid]
        assert len(found) == 1, f"{len(found)} VEVENTs with UID {uid}"
        return found[0]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# --- one helper per parser ---------------------------------------------------------------------


def expand_with_recurring_ical_events(data: bytes, start: dt.date, end: dt.date) -> dict[str, list[dt.date | dt.datetime]]:
    """Occurrence starts per UID between ``start`` and ``end``, as ``recurring-ical-events`` expands them."""
    starts: dict[str, list[dt.date | dt.datetime]] = {}
    for occurrence in recurring_ical_events.of(Calendar.from_ical(data)).between(start, end):
        starts.setdefault(str(occurrence["UID"]), []).append(occurrence["DTSTART"].dt)
    return starts


def parse_with_icalendar(data: bytes) -> Parsed:
    """``icalendar``: parse, ``validate()``, no ``errors`` on any component, every TZID defined."""
    cal = Calendar.from_ical(data)
    cal.validate()
    errors = [(component.name, component.errors) for component in cal.walk() if component.errors]
    assert not errors, f"icalendar ignored errors while parsing: {errors}"
    assert not cal.get_missing_tzids(), f"TZIDs without a VTIMEZONE: {cal.get_missing_tzids()}"
    expanded = expand_with_recurring_ical_events(data, *WINDOW)
    events = [
        Seen(
            uid=str(ev["UID"]),
            summary=str(ev["SUMMARY"]),
            description=str(ev["DESCRIPTION"]),
            location=_str(ev.get("LOCATION")),
            status=str(ev["STATUS"]),
            sequence=int(ev["SEQUENCE"]),
            start=ev["DTSTART"].dt,
            end=ev["DTEND"].dt,
            alarms=tuple(alarm["TRIGGER"].dt for alarm in ev.walk("VALARM")),
            occurrences=tuple(expanded.get(str(ev["UID"]), ())) if "RRULE" in ev else (),
        )
        for ev in cal.walk("VEVENT")
    ]
    return Parsed(str(cal["PRODID"]), str(cal["VERSION"]), events)


def parse_with_vobject(data: bytes) -> Parsed:
    """``vobject.readOne(..., validate=True)``; recurrences through ``getrruleset()`` (EXDATEs applied)."""
    cal = vobject.readOne(data.decode("utf-8"), validate=True)
    events = []
    for ev in cal.contents.get("vevent", []):
        location = ev.contents.get("location")
        events.append(
            Seen(
                uid=ev.uid.value,
                summary=ev.summary.value,
                description=ev.description.value,
                location=location[0].value if location else None,
                status=ev.status.value,
                sequence=int(ev.sequence.value),
                start=ev.dtstart.value,
                end=ev.dtend.value,
                alarms=tuple(alarm.trigger.value for alarm in ev.contents.get("valarm", [])),
                occurrences=tuple(ev.getrruleset(addRDate=True)) if "rrule" in ev.contents else (),
            )
        )
    return Parsed(cal.prodid.value, cal.version.value, events)


def parse_with_ical(data: bytes) -> Parsed:
    """The ``ical`` package's strict parser (no compat mode); recurrences through its timeline."""
    cal = IcsCalendarStream.calendar_from_ics(data.decode("utf-8"))
    timeline = list(cal.timeline) if any(ev.rrule for ev in cal.events) else []
    events = [
        Seen(
            uid=ev.uid,
            summary=ev.summary,
            description=ev.description,
            location=ev.location,
            status=str(ev.status.value),
            sequence=ev.sequence,
            start=ev.dtstart,
            end=ev.dtend,
            alarms=tuple(alarm.trigger for alarm in ev.alarm),
            occurrences=tuple(o.dtstart for o in timeline if o.uid == ev.uid) if ev.rrule else (),
        )
        for ev in cal.events
    ]
    return Parsed(cal.prodid, cal.version, events)


def icaljs_missing() -> str | None:
    """Why ical.js cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None:
        return "node is not installed: the ical.js checks need Node.js"
    if not (ICALJS / "package.json").exists():
        return "tests/js/node_modules/ical.js is missing: run `npm ci --prefix tests/js` (make test does)"
    return None


_DURATION = re.compile(r"^([+-]?)P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def _icaljs_duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text)
    assert match, f"ical.js gave an odd duration {text!r}"
    sign, weeks, days, hours, minutes, seconds = match.groups()
    value = dt.timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                         minutes=int(minutes or 0), seconds=int(seconds or 0))
    return -value if sign == "-" else value


def _icaljs_time(value: dict) -> dt.date | dt.datetime:
    """A DATE, or the wall time ical.js shows with the offset of the instant it computed.

    A TZID that ical.js could not resolve from the feed's VTIMEZONEs reads as floating time,
    which shows here as a +00:00 offset instead of +08:00.
    """
    if value["isDate"]:
        return dt.date.fromisoformat(value["iso"])
    wall = dt.datetime.fromisoformat(value["iso"])
    instant = dt.datetime.fromtimestamp(value["utc"], dt.UTC).replace(tzinfo=None)
    return wall.replace(tzinfo=dt.timezone(wall - instant))


def parse_with_icaljs(data: bytes) -> Parsed:
    """Mozilla's ical.js: ``node tests/js/parse.mjs`` with the feed on stdin, JSON on stdout."""
    reason = icaljs_missing()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        ["node", str(PARSE_MJS)], input=data, capture_output=True, timeout=60, cwd=JS_DIR,
        env={**os.environ, "TZ": "UTC"}, check=False,
    )
    assert done.returncode == 0, f"ical.js failed: {done.stderr.decode(errors='replace')}"
    result = json.loads(done.stdout)
    events = [
        Seen(
            uid=ev["uid"],
            summary=ev["summary"],
            description=ev["description"],
            location=ev["location"],
            status=ev["status"],
            sequence=ev["sequence"],
            start=_icaljs_time(ev["dtstart"]),
            end=_icaljs_time(ev["dtend"]),
            alarms=tuple(_icaljs_duration(alarm["trigger"]) for alarm in ev["alarms"]),
            occurrences=tuple(_icaljs_time(o) for o in ev["occurrences"]),
        )
        for ev in result["events"]
    ]
    return Parsed(result["prodid"], result["version"], events)


PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    "icalendar": parse_with_icalendar,
    "vobject": parse_with_vobject,
    "ical": parse_with_ical,
    "ical.js": parse_with_icaljs,
}


# --- the raw bytes -----------------------------------------------------------------------------


def check_lines(data: bytes) -> None:
    """CRLF everywhere, no physical line over 75 octets, none splitting a multibyte character."""
    assert data.endswith(b"\r\n")
    for number, line in enumerate(data[:-2].split(b"\r\n"), start=1):
        assert b"\n" not in line and b"\r" not in line, f"line {number}: a bare CR or LF"
        assert len(line) <= 75, f"line {number} has {len(line)} octets: {line!r}"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssertionError(f"line {number} splits a multibyte character: {line!r}") from exc


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=list(PARSERS))
def read(request: pytest.FixtureRequest) -> Callable[[bytes], Parsed]:
    """Each test runs once per parser; ``read(data)`` also checks the raw lines."""
    if request.param == "ical.js" and (reason := icaljs_missing()):
        pytest.skip(reason)
    parse = PARSERS[request.param]

    def read(data: bytes) -> Parsed:
        check_lines(data)
        return parse(data)

    return read


@pytest.fixture
def org(ctx):
    """The organization whose feed (``/calendars/orgs/kexie.ics``) most cases read."""
    return create_org("kexie", name_zh="江门市科学技术协会", name_en="Jiangmen Association for Science and Technology")


def feed(client: FlaskClient, path: str) -> bytes:
    """The body of a feed fetched over HTTP."""
    response = client.get(path)
    assert response.status_code == 200, response.data
    assert response.content_type == "text/calendar; charset=utf-8"
    return response.data


# --- the cases ---------------------------------------------------------------------------------


def test_chinese_text_with_commas_semicolons_backslashes_and_newlines(client, org, read):
    """SUMMARY, DESCRIPTION and LOCATION come back exactly, specials and line breaks included."""
    event = create_event(org, publish=True, title=TITLE, description=DESCRIPTION, venue="科技馆,一楼;报告厅\\A区")
    parsed = read(feed(client, "/calendars/orgs/kexie.ics"))
    seen = parsed.event(event.uid)
    assert seen.summary == TITLE
    assert seen.description.startswith(DESCRIPTION + "\n\n")  # the event's own text, then the generated part
    assert "主办 Organizer: 江门市科学技术协会 · Jiangmen Association for Science and Technology" in seen.description
    assert seen.location == "科技馆,一楼;报告厅\\A区"


def test_folding_never_splits_a_multibyte_character(client, org, read):
    """Long lines of 3- and 4-octet characters, at every alignment, fold into ≤ 75-octet lines
    that each decode on their own, and unfold to the exact text."""
    body = "江门𠮷中微子实验室开放日,欢迎报名;" * 6  # 𠮷 (U+20BB7) takes four octets in UTF-8
    titles = [("a" * shift + body)[:200] for shift in range(4)]  # move the fold points across the characters
    events = [create_event(org, publish=True, title=title, description=title * 3) for title in titles]
    data = feed(client, "/calendars/orgs/kexie.ics")
    lines = [b"SUMMARY:" + title.replace(",", "\\,").replace(";", "\\;").encode() for title in titles]
    assert any(line[75] & 0xC0 == 0x80 for line in lines)  # a plain cut at octet 75 would split a character
    parsed = read(data)  # check_lines: every physical line ≤ 75 octets and valid UTF-8
    for event, title in zip(events, titles, strict=True):
        seen = parsed.event(event.uid)
        assert seen.summary == title
        assert seen.description.startswith(title * 3 + "\n\n")


def test_event_across_midnight(client, org, read):
    """22:00–01:00 is shown on the evening it starts and ends next morning, both in +08:00."""
    event = create_event(org, publish=True, title="观星夜", starts_at=shanghai(2024, 6, 22, 22), ends_at=shanghai(2024, 6, 23, 1))
    seen = read(feed(client, "/calendars/orgs/kexie.ics")).event(event.uid)
    for value, wall in ((seen.start, dt.datetime(2024, 6, 22, 22)), (seen.end, dt.datetime(2024, 6, 23, 1))):
        assert isinstance(value, dt.datetime)
        assert (value.replace(tzinfo=None), value.utcoffset()) == (wall, EIGHT_HOURS)
    assert seen.start == dt.datetime(2024, 6, 22, 14, tzinfo=dt.UTC)  # the instant, too
    assert seen.end - seen.start == dt.timedelta(hours=3)


def test_all_day_multi_day_event(client, org, read):
    """18–20 May all day: DATE values (no time, no zone), DTEND the exclusive 21 May."""
    event = create_event(org, publish=True, kind="tech_week", details={}, title="科技活动周", all_day=True,
                         starts_at=dt.date(2024, 5, 18), ends_at=dt.date(2024, 5, 20))
    seen = read(feed(client, "/calendars/orgs/kexie.ics")).event(event.uid)
    assert (type(seen.start), type(seen.end)) == (dt.date, dt.date)
    assert (seen.start, seen.end) == (dt.date(2024, 5, 18), dt.date(2024, 5, 21))


def test_cancelled_event_stays_with_status_cancelled(client, org, read):
    """A cancelled event is not dropped: it stays, STATUS:CANCELLED, so clients remove or strike it."""
    kept = create_event(org, publish=True, title="照常举行")
    cancelled = create_event(org, publish=True, title="暴雨停办")
    ops.cancel_event(cancelled, "台风预警,活动取消")
    db.session.commit()
    parsed = read(feed(client, "/calendars/orgs/kexie.ics"))
    assert sorted(e.uid for e in parsed.events) == sorted([kept.uid, cancelled.uid])
    seen = parsed.event(cancelled.uid)
    assert seen.status == "CANCELLED"
    assert seen.summary.endswith("暴雨停办")
    assert "台风预警,活动取消" in seen.description
    assert parsed.event(kept.uid).status == "CONFIRMED"


def test_rescheduled_event_keeps_uid_and_raises_sequence(client, org, clock, read):
    """Moving an event keeps its UID, raises SEQUENCE by one, and moves DTSTART/DTEND."""
    event = create_event(org, publish=True, title="改期讲座", starts_at=shanghai(2024, 6, 22, 9), ends_at=shanghai(2024, 6, 22, 11))
    before = read(feed(client, "/calendars/orgs/kexie.ics")).event(event.uid)
    clock.advance(hours=1)
    ops.update_event(event, {"starts_at": shanghai(2024, 6, 29, 14, 30), "ends_at": shanghai(2024, 6, 29, 16, 30)})
    db.session.commit()
    after = read(feed(client, "/calendars/orgs/kexie.ics"))
    assert [e.uid for e in after.events] == [event.uid]
    moved = after.event(event.uid)
    assert moved.sequence == before.sequence + 1
    assert before.start == shanghai(2024, 6, 22, 9)
    assert (moved.start, moved.end) == (shanghai(2024, 6, 29, 14, 30), shanghai(2024, 6, 29, 16, 30))
    assert moved.start.utcoffset() == EIGHT_HOURS


def test_recurring_event_with_one_cancelled_occurrence(client, org, read):
    """Weekly, COUNT=4, the second occurrence cancelled: exactly the three others are expanded."""
    series = create_event(org, publish=True, title="周四科普课堂", rrule="FREQ=WEEKLY;COUNT=4",
                          starts_at=shanghai(2024, 6, 20, 19), ends_at=shanghai(2024, 6, 20, 21))
    ops.cancel_occurrence(series, shanghai(2024, 6, 27, 19))
    db.session.commit()
    seen = read(feed(client, "/calendars/orgs/kexie.ics")).event(series.uid)
    assert list(seen.occurrences) == [shanghai(2024, 6, 20, 19), shanghai(2024, 7, 4, 19), shanghai(2024, 7, 11, 19)]
    assert all(start.utcoffset() == EIGHT_HOURS and start.hour == 19 for start in seen.occurrences)
    assert seen.status == "CONFIRMED"


def test_organization_without_events_gives_a_valid_empty_calendar(client, org, read):
    """No events: still a valid VCALENDAR with PRODID and VERSION, and no VEVENT."""
    create_event(create_org("other"), publish=True)  # someone else's event must not show
    parsed = read(feed(client, "/calendars/orgs/kexie.ics"))
    assert parsed.events == []
    assert parsed.version == "2.0"
    assert "Jiangmen" in parsed.prodid


def test_personal_feed_marks_waitlisted_event_tentative(client, org, read):
    """Registering gives the personal feed's URL; a seat is CONFIRMED, the waitlist TENTATIVE."""
    seated = create_event(org, publish=True, title="有座位的活动", capacity=10)
    full = create_event(org, publish=True, title="已满员的活动", capacity=1)
    someone_else = client.post(f"/api/v1/events/{full.id}/registrations", json={"name": "李四", "phone": "13900139000", "consent": NOTICE_VERSION})
    assert someone_else.status_code == 201 and someone_else.json["status"] == "registered"

    first = client.post(f"/api/v1/events/{seated.id}/registrations", json={"name": "张三", "phone": "13800138000", "consent": NOTICE_VERSION})
    second = client.post(f"/api/v1/events/{full.id}/registrations", json={"name": "张三", "phone": "13800138000", "consent": NOTICE_VERSION})
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json["status"], second.json["status"]) == ("registered", "waitlisted")
    assert second.json["calendar"]["url"] != first.json["calendar"]["url"]  # each registration has its own
    prove_number(client, "13800138000")  # the proved number's calendar holds all of them
    url = re.search(r'href="(http://scheduler\.test/calendars/personal/pp_[^"]+\.ics)"', client.get("/me").get_data(as_text=True))[1]

    parsed = read(feed(client, urlsplit(url).path))
    assert sorted(e.uid for e in parsed.events) == sorted([seated.uid, full.uid])
    assert parsed.event(seated.uid).status == "CONFIRMED"
    waitlisted = parsed.event(full.uid)
    assert waitlisted.status == "TENTATIVE"
    assert "候补 Waitlisted" in waitlisted.description


def test_alarms_requested_in_the_url(client, org, read):
    """``?alarm=PT1H&alarm=P1D``: two VALARMs on every event, one hour and one day before."""
    timed = create_event(org, publish=True, title="有提醒的讲座")
    all_day = create_event(org, publish=True, kind="tech_week", details={}, title="全天展览", all_day=True,
                           starts_at=dt.date(2024, 6, 25), ends_at=dt.date(2024, 6, 26))
    parsed = read(feed(client, "/calendars/orgs/kexie.ics?alarm=PT1H&alarm=P1D"))
    for uid in (timed.uid, all_day.uid):
        assert sorted(parsed.event(uid).alarms) == [-dt.timedelta(days=1), -dt.timedelta(hours=1)]
    plain = read(feed(client, "/calendars/orgs/kexie.ics"))
    assert all(e.alarms == () for e in plain.events)
