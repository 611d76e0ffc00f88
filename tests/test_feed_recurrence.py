"""Recurring events in the feeds: five independent parsers expand every series alike.

Any rule the API accepts must render in every feed and give, in each of

* ``icalendar`` + ``recurring-ical-events``,
* ``vobject`` (``getrruleset()``),
* the ``ical`` package (its ``timeline``),
* Mozilla's ical.js (``ICAL.Event#iterator``; Thunderbird, many web clients),
* ``node-ical`` (``expandRecurringEvent``, on ``rrule-temporal``),

the same occurrence starts as the application's own expansion
(:func:`scheduler.events.times.occurrence_starts`, cancelled occurrences left out): instants in
UTC for timed events, days for all-day ones. The property test draws rules from the parts the
API takes (FREQ, INTERVAL, COUNT or UNTIL, BYDAY with ordinals, BYMONTHDAY, BYMONTH, BYSETPOS,
WKST), zones with and without daylight saving time, and cancelled occurrences (EXDATE).

Both JS parsers run in one Node process kept for the whole module (``tests/js/occurrences.mjs``,
a JSON line per request), so an example costs no Node start-up.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
import vobject
from hypothesis import HealthCheck, given, note, reject, settings, strategies as st
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from scheduler.events.models import Event
from scheduler.events.times import occurrence_starts
from scheduler.extensions import db
from tests.factories import auth, create_org, create_user, event_body

UTC = dt.UTC
JS_DIR = Path(__file__).parent / "js"
OCCURRENCES_MJS = JS_DIR / "occurrences.mjs"
ZONES = ("Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC")
#: The local hour that happens twice on the day daylight saving time ends.
REPEATED_HOUR = {"Europe/Berlin": 2, "America/New_York": 1}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: Occurrences are compared over two years from the series' start (a series spans at most 366 days).
HORIZON = dt.timedelta(days=731)

Occurrence = dt.date | dt.datetime


# --- the parsers -------------------------------------------------------------------------------


def _normal(value: Occurrence, all_day: bool) -> Occurrence:
    """A day for all-day events; the instant in UTC for timed ones (a naive value is a parser's floating time)."""
    if all_day:
        return value.date() if isinstance(value, dt.datetime) else value
    assert isinstance(value, dt.datetime) and value.tzinfo is not None, f"a timed occurrence read as {value!r}"
    return value.astimezone(UTC)


def with_recurring_ical_events(data: bytes, uid: str, window: tuple[dt.datetime, dt.datetime], all_day: bool) -> list[Occurrence]:
    """``icalendar`` parses; ``recurring-ical-events`` expands."""
    cal = Calendar.from_ical(data)
    assert not cal.get_missing_tzids()
    found = recurring_ical_events.of(cal).between(*window)
    return [_normal(o["DTSTART"].dt, all_day) for o in found if str(o["UID"]) == uid]


def with_vobject(data: bytes, uid: str, window: tuple[dt.datetime, dt.datetime], all_day: bool) -> list[Occurrence]:
    """``vobject.readOne(validate=True)``; ``getrruleset()`` applies the EXDATEs."""
    cal = vobject.readOne(data.decode("utf-8"), validate=True)
    (event,) = [ev for ev in cal.contents.get("vevent", []) if ev.uid.value == uid]
    return [_normal(start, all_day) for start in event.getrruleset(addRDate=True)]


def with_ical(data: bytes, uid: str, window: tuple[dt.datetime, dt.datetime], all_day: bool) -> list[Occurrence]:
    """The ``ical`` package's strict parser and its timeline."""
    cal = IcsCalendarStream.calendar_from_ics(data.decode("utf-8"))
    return [_normal(o.dtstart, all_day) for o in cal.timeline if o.uid == uid]


PY_PARSERS: dict[str, Callable[[bytes, str, tuple[dt.datetime, dt.datetime], bool], list[Occurrence]]] = {
    "icalendar": with_recurring_ical_events,
    "vobject": with_vobject,
    "ical": with_ical,
}


def node_missing() -> str | None:
    """Why the JS parsers cannot run here, or ``None``."""
    if shutil.which("node") is None:
        return "node is not installed: the ical.js and node-ical checks need Node.js"
    for package in ("ical.js", "node-ical"):
        if not (JS_DIR / "node_modules" / package / "package.json").exists():
            return f"tests/js/node_modules/{package} is missing: run `npm ci --prefix tests/js` (make test does)"
    return None


class Node:
    """One ``node tests/js/occurrences.mjs`` for many requests, a JSON line each way."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(OCCURRENCES_MJS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=JS_DIR,
            env={**os.environ, "TZ": "UTC"}, text=True, encoding="utf-8",
        )

    def expand(self, feeds: list[bytes], window: tuple[dt.datetime, dt.datetime]) -> list[dict[str, dict]]:
        """Per feed, per parser: ``{uid: [occurrence, ...]}`` (or ``{"error": ...}``)."""
        assert self.process.stdin and self.process.stdout
        request = {"window": [w.isoformat() for w in window], "feeds": [f.decode("utf-8") for f in feeds]}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the Node process ended"
        return json.loads(line)

    def close(self) -> None:
        """End the process."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    """The JS parsers, skipped with the reason when Node or the packages are missing."""
    if reason := node_missing():
        pytest.skip(reason)
    process = Node()
    yield process
    process.close()


def _from_js(value: dict, all_day: bool) -> Occurrence:
    if "date" in value:
        return dt.date.fromisoformat(value["date"])
    assert not all_day, f"an all-day occurrence read as a time: {value}"
    return dt.datetime.fromtimestamp(value["utc"], UTC)


def read_everywhere(node: Node, data: bytes, uids: dict[str, bool], window: tuple[dt.datetime, dt.datetime]) -> dict[str, dict[str, list[Occurrence]]]:
    """``{uid: {parser: occurrences}}`` for each UID of ``uids`` (UID → all-day) in the feed ``data``."""
    (js,) = node.expand([data], window)
    seen: dict[str, dict[str, list[Occurrence]]] = {}
    for uid, all_day in uids.items():
        seen[uid] = {name: parse(data, uid, window, all_day) for name, parse in PY_PARSERS.items()}
        for name, result in js.items():
            assert "error" not in result, f"{name} failed: {result['error']}"
            seen[uid][name] = [_from_js(o, all_day) for o in result[uid]]
    return seen


# --- what the application says -----------------------------------------------------------------


def expected(event: Event) -> list[Occurrence]:
    """The application's occurrences of ``event``, cancelled ones left out, as the parsers are compared."""
    tz = ZoneInfo(event.timezone)
    starts = [s for s in occurrence_starts(event.starts_at, event.timezone, event.rrule) if s.isoformat() not in event.exdates]
    return [s.astimezone(tz).date() for s in starts] if event.all_day else starts


def window_of(event: Event) -> tuple[dt.datetime, dt.datetime]:
    """Two years from the day before the series starts."""
    start = dt.datetime.combine(event.starts_at.date() - dt.timedelta(days=1), dt.time(0), tzinfo=UTC)
    return start, start + HORIZON


def assert_all_agree(seen: dict[str, list[Occurrence]], wanted: list[Occurrence], what: str) -> None:
    """Every parser lists exactly the application's occurrences."""
    wrong = {name: got for name, got in seen.items() if got != wanted}
    assert not wrong, f"{what}\napplication: {len(wanted)} from {wanted[:1]}\n" + "\n".join(
        f"{name}: only {sorted(set(got) - set(wanted))[:5]}, missing {sorted(set(wanted) - set(got))[:5]}, {len(got)} vs {len(wanted)}"
        for name, got in wrong.items()
    )


# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A drawn series: what the API is sent, and which occurrences then get cancelled."""

    zone: str
    all_day: bool
    start: dt.datetime  # local wall time (the day only, when all-day)
    rule: str
    cancel: tuple[int, ...]  # indexes into the occurrences


def _weekdays(draw: st.DrawFn, ordinals: tuple[int, ...]) -> str:
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4, unique=True))
    if not ordinals:
        return ",".join(days)
    return ",".join(f"{draw(st.sampled_from(ordinals))}{day}" if draw(st.booleans()) else day for day in days)


@st.composite
def series(draw: st.DrawFn) -> Series:
    """A series the API should take: a zone, all-day or timed, a start and an RFC 5545 rule."""
    zone = draw(st.sampled_from(ZONES))
    all_day = draw(st.booleans())
    day = draw(st.dates(min_value=dt.date(2024, 7, 1), max_value=dt.date(2027, 12, 31)))
    # ical.js 2.2.1 reads a local time that happens twice (01:30 in New York on the day DST ends)
    # as the second, standard-time instant; RFC 5545 3.3.5 says the first. Series at such hours
    # are left out; nonexistent times (02:30 in New York on the day DST starts) stay in.
    hours = [h for h in range(24) if h != REPEATED_HOUR.get(zone)]
    start = dt.datetime.combine(day, dt.time(0) if all_day else dt.time(draw(st.sampled_from(hours)), draw(st.sampled_from((0, 30)))))
    freq = draw(st.sampled_from(("DAILY", "WEEKLY", "MONTHLY", "YEARLY")))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    months: list[int] = []
    # MONTHLY with BYMONTH: ical.js 2.2.1 repeats a month's occurrences when the start is not in
    # the first BYMONTH month (MONTHLY;BYMONTH=1,2;BYDAY=MO from 3 February lists February twice).
    # The feed writes INTERVAL=1 rules without BYSETPOS as the equal YEARLY rule, which ical.js
    # reads right; other MONTHLY rules get no BYMONTH here.
    monthly_by_month = freq == "MONTHLY" and interval == 1 and draw(st.booleans())
    if freq == "YEARLY" or monthly_by_month:
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
        parts.append("BYMONTH=" + ",".join(map(str, sorted(months))))
    by_period = freq in ("MONTHLY", "YEARLY")
    filters = draw(st.sampled_from(("none", "byday", "bymonthday", "both") if by_period else ("none", "byday")))
    if filters in ("byday", "both"):
        ordinals = (1, 2, 3, 4, -1, -2) if by_period and filters == "byday" else ()
        parts.append("BYDAY=" + _weekdays(draw, ordinals))
    if filters in ("bymonthday", "both"):
        # With BYDAY beside it, ical.js 2.2.1 mishandles a negative BYMONTHDAY (its BYDAY+BYMONTHDAY
        # month walk skips or adds months, depending on the list's order and INTERVAL; e.g.
        # FREQ=MONTHLY;INTERVAL=2;BYDAY=MO;BYMONTHDAY=-1,1 from 2024-07-01 gives 2025-06-30).
        # In YEARLY rules ical.js 2.2.1 moves a day the month lacks into the next month
        # (YEARLY;BYMONTH=2,4;BYMONTHDAY=29 gives 1 March 2025) and counts BYMONTHDAY=-1 as the
        # 31st (1 July for June): YEARLY days here are 1 to 28.
        monthly = freq == "MONTHLY"
        choices = (1, 2, 10, 15, 28) + ((29, 30, 31) if monthly else ()) + ((-1, -2) if monthly and filters == "bymonthday" else ())
        days = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    # BYSETPOS only where ical.js 2.2.1 applies it: MONTHLY with BYDAY, or YEARLY with BYDAY in one
    # month. ical.js ignores BYSETPOS with BYMONTHDAY (kewisch/ical.js#960, fix in PR #985) and
    # numbers positions per month, not per year, in yearly rules (kewisch/ical.js#1039).
    if filters == "byday" and ((freq == "MONTHLY" and not months) or (freq == "YEARLY" and len(months) == 1)) and draw(st.booleans()):
        parts.append("BYSETPOS=" + ",".join(map(str, draw(st.lists(st.sampled_from((1, 2, -1, -2)), min_size=1, max_size=2, unique=True)))))
    if freq == "WEEKLY" and draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(('MO', 'SU')))}")
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 12))}")
    else:
        until = start + dt.timedelta(days=draw(st.integers(0, 300)))
        if draw(st.booleans()):  # any time of day, not only the occurrences' own
            until = until.replace(hour=draw(st.integers(0, 23)), minute=draw(st.sampled_from((0, 29, 59))))
        parts.append(f"UNTIL={until.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC):%Y%m%dT%H%M%SZ}")
    cancel = tuple(draw(st.lists(st.integers(0, 11), max_size=2, unique=True)))
    return Series(zone, all_day, start, ";".join(draw(st.permutations(parts))), cancel)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def editor(ctx) -> dict[str, str]:
    """Headers of an editor of the organization ``kexie``."""
    return auth(create_user("editor", create_org("kexie")))


def create_series(client, editor: dict[str, str], drawn: Series) -> Event | None:
    """Create and publish the series through the API, cancel the chosen occurrences; ``None`` if the API refuses the rule."""
    tz = ZoneInfo(drawn.zone)
    if drawn.all_day:
        times = {"starts_at": drawn.start.date().isoformat(), "ends_at": drawn.start.date().isoformat(), "all_day": True}
    else:
        begins = drawn.start.replace(tzinfo=tz)
        times = {"starts_at": begins.isoformat(), "ends_at": (begins + dt.timedelta(hours=2)).isoformat()}
    created = client.post("/api/v1/events", json=event_body("kexie", timezone=drawn.zone, rrule=drawn.rule, **times), headers=editor)
    if created.status_code == 422:
        assert set(created.json["error"]["fields"]) <= {"rrule", "ends_at"}, created.json  # never the zone or the start
        return None
    assert created.status_code == 201, created.json
    event_id = created.json["id"]
    assert client.post(f"/api/v1/events/{event_id}/publish", headers=editor).status_code == 200
    event = db.session.get(Event, event_id)
    starts = occurrence_starts(event.starts_at, event.timezone, event.rrule)
    for index in sorted({i % len(starts) for i in drawn.cancel}):
        if index == 0 and len(starts) == 1:
            continue  # a series keeps at least one occurrence
        url = f"/api/v1/events/{event_id}/occurrences/cancel"
        response = client.post(url, json={"starts_at": starts[index].isoformat()}, headers=editor)
        assert response.status_code in (200, 409), response.json  # 409: it would leave no occurrence
    db.session.expire_all()
    return db.session.get(Event, event_id)


def single_feed(client, event: Event) -> bytes:
    """``/events/<id>.ics``: it must answer 200."""
    response = client.get(f"/events/{event.id}.ics")
    assert response.status_code == 200, response.data[:500]
    return response.data


# --- the property ------------------------------------------------------------------------------


def test_every_rule_the_api_accepts_reads_alike_in_five_parsers(client, editor, node):
    """Random rules, zones, all-day or timed, with cancelled occurrences: ``/events/<id>.ics``
    answers 200 and every parser lists the application's occurrences; then the same for all of
    them together in ``/calendars/all.ics``."""
    made: list[Event] = []

    @settings(max_examples=int(os.environ.get("RRULE_EXAMPLES", 60)), deadline=None, derandomize=not os.environ.get("RRULE_EXAMPLES"), database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(series())
    def check(drawn: Series) -> None:
        event = create_series(client, editor, drawn)
        if event is None:
            reject()
        note(f"{drawn.zone} {'all-day' if drawn.all_day else 'timed'} {drawn.start} RRULE:{event.rrule} EXDATE {event.exdates}")
        made.append(event)
        wanted = expected(event)
        seen = read_everywhere(node, single_feed(client, event), {event.uid: event.all_day}, window_of(event))[event.uid]
        assert_all_agree(seen, wanted, f"{drawn}")

    check()
    assert len(made) >= 30, f"only {len(made)} drawn rules were accepted: the generator needs fixing"
    response = client.get("/calendars/all.ics")
    assert response.status_code == 200
    window = (dt.datetime(2024, 6, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC) + 3 * HORIZON)
    seen = read_everywhere(node, response.data, {e.uid: e.all_day for e in made}, window)
    for event in made:
        assert_all_agree(seen[event.uid], expected(event), f"{event.timezone} RRULE:{event.rrule} in all.ics")


# --- regressions -------------------------------------------------------------------------------


def test_feed_with_an_until_series_answers_200_and_parsers_agree(client, editor, node):
    """Issue 12: a series with UNTIL made every feed holding it answer 500. Timed (UNTIL in UTC)
    and all-day (UNTIL a DATE) series now render, and all five parsers list the same days."""
    timed = create_series(client, editor, Series("Asia/Shanghai", False, dt.datetime(2024, 7, 4, 19), "FREQ=WEEKLY;UNTIL=20240725T110000Z", ()))
    all_day = create_series(client, editor, Series("Asia/Shanghai", True, dt.datetime(2024, 7, 6), "FREQ=WEEKLY;UNTIL=20240720T155959Z", ()))
    response = client.get("/calendars/all.ics")
    assert response.status_code == 200
    assert b"RRULE:FREQ=WEEKLY;UNTIL=20240725T110000Z" in response.data
    assert b"RRULE:FREQ=WEEKLY;UNTIL=20240720\r\n" in response.data  # a DATE, as DTSTART;VALUE=DATE
    window = (dt.datetime(2024, 7, 1, tzinfo=UTC), dt.datetime(2024, 7, 1, tzinfo=UTC) + HORIZON)
    seen = read_everywhere(node, response.data, {timed.uid: False, all_day.uid: True}, window)
    assert_all_agree(seen[timed.uid], [dt.datetime(2024, 7, d, 11, tzinfo=UTC) for d in (4, 11, 18, 25)], "timed UNTIL")
    assert_all_agree(seen[all_day.uid], [dt.date(2024, 7, 6), dt.date(2024, 7, 13), dt.date(2024, 7, 20)], "all-day UNTIL")


def test_berlin_summer_occurrence_is_at_the_right_instant_in_icaljs(client, editor, node):
    """Issue 12: Europe/Berlin's VTIMEZONE was an RDATE list, of which ical.js read only the first
    value, so summer occurrences after 2001 came an hour off. 10:00 in Berlin is 08:00 UTC in July
    and 09:00 UTC in November, in ical.js as in every other parser."""
    series_ = create_series(client, editor, Series("Europe/Berlin", False, dt.datetime(2025, 7, 1, 10), "FREQ=MONTHLY;COUNT=5", ()))
    data = single_feed(client, series_)
    assert b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in data and b"RDATE" not in data
    window = (dt.datetime(2025, 6, 1, tzinfo=UTC), dt.datetime(2025, 6, 1, tzinfo=UTC) + HORIZON)
    seen = read_everywhere(node, data, {series_.uid: False}, window)[series_.uid]
    wanted = [dt.datetime(2025, month, 1, 8 if month < 11 else 9, tzinfo=UTC) for month in (7, 8, 9, 10, 11)]
    assert seen["ical.js"] == wanted
    assert_all_agree(seen, wanted, "Berlin monthly")
