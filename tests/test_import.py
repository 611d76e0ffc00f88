"""Importing events from another calendar: the file rules, re-import, CLI, API, upload form, safe fetch."""
import datetime as dt
import io
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address

import pytest
from icalendar import Calendar
from icalendar import Event as IcsEvent
from icalendar import Timezone
from sqlalchemy import delete, func, select

from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.feeds import import_jobs, importer
from scheduler.feeds.importer import ImportRejected, apply_import, import_calendar, plan_import, read_calendar
from scheduler.util import http
from scheduler.util.http import Allowlist, FetchError, UnsafeURL, is_public_address, safe_get
from tests.pages import PASSWORD, csrf_token, sign_in
from tests.factories import CST, auth, create_city, create_event, create_user

UTC = dt.timezone.utc


# --- building calendars -------------------------------------------------------------------

def vevent(*lines: str) -> str:
    """A VEVENT of the given content lines."""
    return "BEGIN:VEVENT\r\n" + "".join(line + "\r\n" for line in lines) + "END:VEVENT\r\n"


def calendar(*events: str, head: str = "") -> bytes:
    """A VCALENDAR holding ``events`` (and ``head`` before them: VTIMEZONEs)."""
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other Calendar//Test//ZH\r\n" + head + "".join(events)
    text += "END:VCALENDAR\r\n"
    return text.encode()


SHANGHAI = Timezone.from_tzid("Asia/Shanghai", first_date=dt.date(2024, 1, 1), last_date=dt.date(2025, 1, 1)).to_ical().decode()

CARNIVAL_UTC = vevent(
    "UID:carnival-2024@other.example",
    "SUMMARY:江门科普嘉年华 Science carnival",
    "DESCRIPTION:机器人\\, 无人机与天文观测。\\nRobots\\, drones and stargazing.",
    "LOCATION:江门市科技馆",
    "GEO:22.5790;113.0815",
    "DTSTART:20240720T010000Z",
    "DTEND:20240720T090000Z",
)
TECH_WEEK_ALL_DAY = vevent(
    "UID:tech-week-2024@other.example",
    "SUMMARY:全国科技活动周(江门)",
    "CATEGORIES:全国科技活动周,Science",
    "DTSTART;VALUE=DATE:20240720",
    "DTEND;VALUE=DATE:20240727",
)
WEEKLY_SERIES = vevent(
    "UID:stargazing-series@other.example",
    "SUMMARY:周六观星 Saturday stargazing",
    "CATEGORIES:Science carnival",
    "DTSTART;TZID=Asia/Shanghai:20240706T193000",
    "DTEND;TZID=Asia/Shanghai:20240706T213000",
    "RRULE:FREQ=WEEKLY;COUNT=4",
    "EXDATE;TZID=Asia/Shanghai:20240713T193000",
)
CANCELLED = vevent(
    "UID:cancelled-talk@other.example",
    "SUMMARY:台风取消的讲座",
    "DTSTART;TZID=Asia/Shanghai:20240803T140000",
    "DURATION:PT90M",
    "STATUS:CANCELLED",
)
SOURCE = calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY, WEEKLY_SERIES, CANCELLED, head=SHANGHAI)


def count_events() -> int:
    return db.session.scalar(select(func.count()).select_from(Event))


def by_uid(uid: str) -> Event:
    db.session.expire_all()
    return db.session.scalar(select(Event).where(Event.uid == uid))


@pytest.fixture
def orgs(ctx):
    return create_city(with_lab=False)


def do_import(data: bytes, org, **options):
    summary = import_calendar(data, org=org, source="other.ics", **options)
    db.session.commit()
    return summary


# --- the file rules -----------------------------------------------------------------------

def test_import_creates_every_kind_of_event(orgs, client):
    summary = do_import(SOURCE, orgs["xinhui"])
    assert (summary.created, summary.updated, summary.unchanged) == (4, 0, 0)

    carnival = by_uid("carnival-2024@other.example")
    assert (carnival.kind, carnival.status, carnival.org.slug) == ("science_carnival", "published", "xinhui")
    assert carnival.title == "江门科普嘉年华 Science carnival"
    assert carnival.description == "机器人, 无人机与天文观测。\nRobots, drones and stargazing."
    assert (carnival.venue, carnival.latitude, carnival.longitude) == ("江门市科技馆", 22.579, 113.0815)
    assert carnival.starts_at == dt.datetime(2024, 7, 20, 1, 0, tzinfo=UTC)
    assert (carnival.timezone, carnival.import_source) == ("Asia/Shanghai", "other.ics")

    week = by_uid("tech-week-2024@other.example")
    assert (week.kind, week.all_day) == ("tech_week", True)  # CATEGORIES names one of our kinds
    assert week.starts_at == dt.datetime(2024, 7, 20, tzinfo=CST)
    assert week.ends_at == dt.datetime(2024, 7, 27, tzinfo=CST)  # exclusive end date kept: 7 days

    series = by_uid("stargazing-series@other.example")
    assert (series.kind, series.rrule, series.timezone) == ("science_carnival", "FREQ=WEEKLY;COUNT=4", "Asia/Shanghai")
    assert series.exdates == [dt.datetime(2024, 7, 13, 19, 30, tzinfo=CST).astimezone(UTC).isoformat()]
    assert series.last_ends_at == dt.datetime(2024, 7, 27, 21, 30, tzinfo=CST)

    cancelled = by_uid("cancelled-talk@other.example")
    assert cancelled.status == "cancelled"
    assert cancelled.ends_at - cancelled.starts_at == dt.timedelta(minutes=90)

    feed = client.get("/calendars/orgs/xinhui.ics")  # and out again through our own feed
    assert feed.status_code == 200
    uids = {str(e["UID"]) for e in Calendar.from_ical(feed.data).walk("VEVENT")}
    assert {"carnival-2024@other.example", "stargazing-series@other.example", "cancelled-talk@other.example"} <= uids


def test_calendar_built_with_icalendar_outlook_zone_and_draft(orgs):
    cal = Calendar()
    cal.add("prodid", "-//Outlook-like//ZH")
    cal.add("version", "2.0")
    event = IcsEvent()
    event.add("uid", "outlook-1@example.com")
    event.add("summary", "中微子实验室开放日")
    start = dt.datetime(2024, 9, 1, 9, 0)
    event.add("dtstart", start, parameters={"TZID": "China Standard Time"})  # a Windows zone name, as Outlook writes
    event.add("dtend", start + dt.timedelta(hours=3), parameters={"TZID": "China Standard Time"})
    event.add("categories", ["contest-like", "science_carnival"])
    cal.add_component(event)
    summary = do_import(cal.to_ical(), orgs["kaiping"], draft=True)
    assert summary.created == 1
    imported = by_uid("outlook-1@example.com")
    assert (imported.status, imported.timezone) == ("draft", "Asia/Shanghai")
    assert imported.starts_at == dt.datetime(2024, 9, 1, 9, 0, tzinfo=CST)


def test_reimport_updates_instead_of_duplicating(orgs):
    do_import(SOURCE, orgs["xinhui"])
    before = {uid: (e.sequence, e.updated_at) for uid, e in ((u, by_uid(u)) for u in (
        "carnival-2024@other.example", "tech-week-2024@other.example", "stargazing-series@other.example"))}

    again = do_import(SOURCE, orgs["xinhui"])  # the same file: nothing changes
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert count_events() == 4
    assert by_uid("carnival-2024@other.example").updated_at == before["carnival-2024@other.example"][1]

    changed = calendar(
        CARNIVAL_UTC.replace("20240720T010000Z", "20240721T010000Z").replace("20240720T090000Z", "20240721T090000Z"),
        TECH_WEEK_ALL_DAY.replace("全国科技活动周(江门)", "全国科技活动周(江门·新会)"),
        WEEKLY_SERIES.replace("EXDATE;TZID=Asia/Shanghai:20240713T193000", "EXDATE;TZID=Asia/Shanghai:20240720T193000"),
        CANCELLED,
        head=SHANGHAI,
    )
    summary = do_import(changed, orgs["xinhui"])
    assert (summary.created, summary.updated, summary.unchanged) == (0, 3, 1)
    assert count_events() == 4
    carnival = by_uid("carnival-2024@other.example")
    assert carnival.starts_at == dt.datetime(2024, 7, 21, 1, 0, tzinfo=UTC)
    assert carnival.sequence == before["carnival-2024@other.example"][0] + 1  # time changed: SEQUENCE rises
    week = by_uid("tech-week-2024@other.example")
    assert week.title.endswith("新会)")
    assert week.sequence == before["tech-week-2024@other.example"][0]  # a new title alone does not raise it
    series = by_uid("stargazing-series@other.example")
    assert series.exdates == [dt.datetime(2024, 7, 20, 11, 30, tzinfo=UTC).isoformat()]
    assert series.sequence == before["stargazing-series@other.example"][0] + 1


def test_reimport_publishes_drafts_and_cancels(orgs):
    do_import(calendar(CARNIVAL_UTC), orgs["xinhui"], draft=True)
    assert by_uid("carnival-2024@other.example").status == "draft"
    assert do_import(calendar(CARNIVAL_UTC), orgs["xinhui"]).updated == 1
    event = by_uid("carnival-2024@other.example")
    assert event.status == "published"
    sequence = event.sequence
    cancelled = calendar(CARNIVAL_UTC.replace("END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT"))
    assert do_import(cancelled, orgs["xinhui"]).updated == 1
    event = by_uid("carnival-2024@other.example")
    assert (event.status, event.sequence) == ("cancelled", sequence + 1)
    assert do_import(cancelled, orgs["xinhui"]).unchanged == 1
    with pytest.raises(ImportRejected, match="not imported") as refused:  # cancelled here, not there
        do_import(calendar(CARNIVAL_UTC), orgs["xinhui"])
    assert "cannot be brought back" in str(refused.value.problems[0])


def test_cancelled_occurrence_becomes_an_exdate(orgs):
    override = vevent(
        "UID:stargazing-series@other.example", "SUMMARY:周六观星", "RECURRENCE-ID;TZID=Asia/Shanghai:20240727T193000",
        "DTSTART;TZID=Asia/Shanghai:20240727T193000", "STATUS:CANCELLED",
    )
    do_import(calendar(WEEKLY_SERIES, override), orgs["xinhui"])
    assert len(by_uid("stargazing-series@other.example").exdates) == 2


def nested(depth: int) -> str:
    names = [f"X-LEVEL{i}" for i in range(depth)]
    return "".join(f"BEGIN:{n}\r\n" for n in names) + "".join(f"END:{n}\r\n" for n in reversed(names))


def with_good(*events: str, head: str = "") -> bytes:
    """A calendar of two good events and ``events``: the good ones are imported whatever the others hold."""
    return calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY, *events, head=head)


GOOD_UIDS = {"carnival-2024@other.example", "tech-week-2024@other.example"}

FILE_FAULTS = [
    pytest.param(b"<!doctype html><title>Not a calendar</title>", "does not begin with BEGIN:VCALENDAR", id="html-page"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00binary", "not UTF-8", id="binary"),
    pytest.param(b"", "empty", id="empty-file"),
    pytest.param(with_good(vevent("UID:n@x", "SUMMARY:\x00", "DTSTART:20240720T010000Z")), "NUL", id="nul-character"),
    pytest.param(with_good(vevent("UID:deep@x", "SUMMARY:深", "DTSTART:20240720T010000Z", nested(3).rstrip("\r\n"))),
                 "nested 5 deep", id="nesting-too-deep"),
    pytest.param(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR\r\n", "does not close BEGIN:VEVENT",
                 id="end-mismatch"),
    pytest.param(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "never closed", id="unclosed"),
    pytest.param(with_good() + calendar(), "Only one calendar", id="two-calendars"),
]


@pytest.mark.parametrize(("data", "expected"), FILE_FAULTS)
def test_a_file_that_cannot_be_read_is_refused_and_nothing_imported(orgs, data, expected):
    with pytest.raises(ImportRejected) as refused:
        do_import(data, orgs["xinhui"])
    text = "\n".join(refused.value.lines())
    assert expected in text, text
    assert count_events() == 0


EVENT_FAULTS = [
    pytest.param(vevent("UID:d@x", "SUMMARY:坏日期", "DTSTART:2024-13-45"), "DTSTART", id="bad-date"),
    pytest.param(vevent("UID:d@x", "SUMMARY:日期", "DTSTART:19990101T000000Z"), "between the years 2000", id="date-too-early"),
    pytest.param(vevent("UID:d@x", "SUMMARY:日期", "DTSTART:00010101T000000Z"), "out of range", id="year-one"),
    pytest.param(vevent("UID:tz@x", "SUMMARY:火星时间", "DTSTART;TZID=Mars/Olympus_Mons:20240720T090000"),
                 "Mars/Olympus_Mons", id="unknown-tzid"),
    pytest.param(vevent("SUMMARY:没有UID", "DTSTART:20240720T010000Z"), "UID is missing", id="missing-uid"),
    pytest.param(vevent("UID:s@x", "DTSTART:20240720T010000Z"), "SUMMARY is missing", id="missing-summary"),
    pytest.param(vevent("UID:s@x", "SUMMARY:无开始"), "DTSTART is missing", id="missing-dtstart"),
    pytest.param(vevent("UID:r@x", "SUMMARY:每天", "DTSTART:20240720T010000Z", "RRULE:FREQ=DAILY;COUNT=400"),
                 "at most 366", id="too-many-occurrences"),
    pytest.param(vevent("UID:e@x", "SUMMARY:倒流", "DTSTART:20240720T010000Z", "DTEND:20240719T010000Z"),
                 "DTEND", id="end-before-start"),
    pytest.param(vevent("UID:p@x", "SUMMARY:私事", "CLASS:PRIVATE", "DTSTART:20240720T010000Z"), "private", id="private-event"),
    pytest.param(vevent("UID:k@x", "SUMMARY:研学", "CATEGORIES:科普研学游", "DTSTART:20240720T010000Z"),
                 "meeting_point", id="kind-needing-details"),
    pytest.param(vevent("UID:carnival-2024@other.example", "SUMMARY:二", "DTSTART:20240721T010000Z"),
                 "used by another event", id="duplicate-uid"),
    pytest.param(vevent("UID:l@x", "SUMMARY:x", "DTSTART:20240720T010000Z", "this is not a content line"),
                 "could not be read", id="garbage-line"),
    pytest.param(vevent("UID:m@x", "SUMMARY:挪动", "RECURRENCE-ID:20240720T010000Z", "DTSTART:20240721T010000Z"),
                 "not in the file", id="moved-occurrence-without-series"),
]


@pytest.mark.parametrize(("event", "expected"), EVENT_FAULTS)
def test_an_event_that_cannot_be_imported_is_listed_and_the_others_are_imported(orgs, event, expected):
    summary = do_import(with_good(event), orgs["xinhui"])
    assert (summary.created, summary.rejected) == (2, 1)
    [problem] = summary.problems
    assert problem.line == 20 and expected in problem.reason, problem
    assert {e.uid for e in db.session.scalars(select(Event))} == GOOD_UIDS


@pytest.mark.parametrize(("event", "expected"), EVENT_FAULTS[:3])
def test_a_file_whose_every_event_is_refused_is_refused_whole(orgs, event, expected):
    with pytest.raises(ImportRejected) as refused:
        do_import(calendar(event), orgs["xinhui"])
    assert expected in refused.value.lines()[0]
    assert count_events() == 0


def test_all_or_nothing_when_asked(orgs):
    with pytest.raises(ImportRejected, match="not imported"):
        do_import(with_good(EVENT_FAULTS[0].values[0]), orgs["xinhui"], atomic=True)
    assert count_events() == 0


def test_a_dry_run_reports_and_saves_nothing(orgs):
    create_event(orgs["xinhui"], uid="carnival-2024@other.example", publish=True, title="旧标题")
    summary = do_import(with_good(EVENT_FAULTS[0].values[0]), orgs["xinhui"], dry_run=True)
    assert (summary.dry_run, summary.created, summary.updated, summary.rejected) == (True, 1, 1, 1)
    assert count_events() == 1 and by_uid("carnival-2024@other.example").title == "旧标题"


def test_limits_are_checked_before_parsing(orgs, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 2000)
    big = calendar(vevent("UID:big@x", "SUMMARY:" + "长" * 1000, "DTSTART:20240720T010000Z"))
    with pytest.raises(ImportRejected, match=r"\(1 problem\)") as refused:
        do_import(big, orgs["xinhui"])
    assert str(refused.value.problems[0]) == f"The file is too large ({len(big):,} bytes); at most 2,000 bytes are imported."

    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 5 * 1024 * 1024)
    monkeypatch.setitem(app.config, "IMPORT_MAX_EVENTS", 2)
    three = calendar(*(vevent(f"UID:{i}@x", "SUMMARY:活动", "DTSTART:20240720T010000Z") for i in range(3)))
    with pytest.raises(ImportRejected, match="not imported") as refused:
        do_import(three, orgs["xinhui"])
    assert "more than 2 events" in str(refused.value.problems[0])

    monkeypatch.setitem(app.config, "IMPORT_MAX_EVENTS", 5000)
    monkeypatch.setitem(app.config, "IMPORT_MAX_SECONDS", 0)  # slow rules: reading stops at a time budget
    with pytest.raises(ImportRejected) as refused:
        do_import(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY), orgs["xinhui"])
    assert "took longer than 0 s" in refused.value.lines()[-1]
    assert count_events() == 0


def test_problems_name_event_line_and_what_is_wrong(orgs):
    data = calendar(
        CARNIVAL_UTC,
        vevent("UID:tz@x", "SUMMARY:火星讲座", "DTSTART;TZID=Mars/Base:20240720T090000"),
        vevent("UID:r@x", "SUMMARY:太多次", "DTSTART:20240720T010000Z", "RRULE:FREQ=DAILY;COUNT=999"),
    )
    with pytest.raises(ImportRejected) as refused:
        read_calendar(data)
    problems = refused.value.problems
    assert [(p.uid, p.summary) for p in problems] == [("tz@x", "火星讲座"), ("r@x", "太多次")]
    assert problems[0].line == 13 and "TZID=Mars/Base" in problems[0].reason
    assert str(problems[1]).startswith("line 18, event r@x (太多次): RRULE: A series may have at most 366")
    assert refused.value.fields() == {
        "events.tz@x": f"line 13: {problems[0].reason}",
        "events.r@x": f"line 18: {problems[1].reason}",
    }


def test_uid_of_another_organization_is_refused(orgs):
    create_event(orgs["kaiping"], uid="carnival-2024@other.example", publish=True)
    before = count_events()
    summary = do_import(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY), orgs["xinhui"])
    assert "another organization" in str(summary.problems[0]) and summary.created == 1
    assert count_events() == before + 1
    assert by_uid("carnival-2024@other.example").org_id == orgs["kaiping"].id
    # the organization's own event with that UID is updated instead
    assert do_import(calendar(CARNIVAL_UTC), orgs["kaiping"]).updated == 1


def test_a_refusal_while_applying_leaves_that_event_out(orgs, monkeypatch):
    items = read_calendar(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY))
    plan = plan_import(items, org=orgs["xinhui"], source="x.ics")
    from scheduler.api.errors import Conflict

    calls = []

    def publish(event):
        calls.append(event.uid)
        if len(calls) == 2:
            raise Conflict("refused")

    monkeypatch.setattr(importer.operations, "publish_event", publish)
    summary = apply_import(plan)
    db.session.commit()
    assert (summary.created, [p.uid for p in summary.problems]) == (1, ["tech-week-2024@other.example"])
    assert "Refused when saved: refused" in str(summary.problems[0])
    assert [e.uid for e in db.session.scalars(select(Event))] == ["carnival-2024@other.example"]

    calls.clear()
    db.session.execute(delete(Event))
    with pytest.raises(ImportRejected, match="not imported"):  # all or nothing, when asked
        apply_import(plan_import(read_calendar(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY)), org=orgs["xinhui"], source="x"),
                     atomic=True)
    assert count_events() == 0


# --- the command --------------------------------------------------------------------------

def test_cli_import_with_progress_and_summary(runner, orgs, tmp_path):
    path = tmp_path / "other.ics"
    path.write_bytes(SOURCE)
    result = runner.invoke(args=["import-ics", str(path), "--org", "xinhui"])
    assert result.exit_code == 0, result.output
    assert "Importing 4 events" in result.output
    assert "Imported into xinhui: 4 created, 0 updated, 0 unchanged." in result.output
    assert by_uid("carnival-2024@other.example").import_source == str(path)
    again = runner.invoke(args=["import-ics", str(path), "--org", "xinhui", "--kind", "tech_week"])
    assert "0 created, 0 updated, 4 unchanged" in again.output


def test_cli_refusal_lists_problems_and_fails(runner, orgs, tmp_path):
    path = tmp_path / "bad.ics"
    mars = vevent("UID:tz@x", "SUMMARY:火星", "DTSTART;TZID=Mars/Base:20240720T090000")
    path.write_bytes(calendar(mars))
    result = runner.invoke(args=["import-ics", str(path), "--org", "xinhui"])
    assert result.exit_code == 1
    assert "The calendar was not imported (1 problem); nothing was saved." in result.output
    assert "line 4, event tz@x (火星): DTSTART: unknown time zone TZID=Mars/Base" in result.output
    assert count_events() == 0
    path.write_bytes(calendar(CARNIVAL_UTC, mars))  # the good event is imported, the other listed
    checked = runner.invoke(args=["import-ics", str(path), "--org", "xinhui", "--dry-run"])
    assert checked.exit_code == 0 and "Dry run, nothing saved. Importing into xinhui would create 1" in checked.output
    assert count_events() == 0
    partial = runner.invoke(args=["import-ics", str(path), "--org", "xinhui"])
    assert partial.exit_code == 0 and "1 created" in partial.output
    assert "Not imported (1):\n  - line 13, event tz@x (火星): DTSTART: unknown time zone" in partial.output
    assert count_events() == 1
    atomic = runner.invoke(args=["import-ics", str(path), "--org", "xinhui", "--atomic"])
    assert atomic.exit_code == 1 and "nothing was saved" in atomic.output
    assert runner.invoke(args=["import-ics", str(path), "--org", "nowhere"]).exit_code == 2
    missing = runner.invoke(args=["import-ics", str(tmp_path / "missing.ics"), "--org", "xinhui"])
    assert missing.exit_code == 1 and "cannot be read" in missing.output
    drafts = runner.invoke(args=["import-ics", str(path), "--org", "xinhui", "--kind", "party"])
    assert drafts.exit_code == 2  # not one of our kinds


# --- the API ------------------------------------------------------------------------------

def upload(client, data: bytes, headers, **fields):
    form = {"file": (io.BytesIO(data), "其他日历.ics"), "org": "xinhui", **fields}
    return client.post("/api/v1/imports", data=form, headers=headers, content_type="multipart/form-data")


def test_api_import_needs_an_editor_of_the_organization(client, orgs):
    assert upload(client, SOURCE, {}).status_code == 401
    viewer = auth(create_user("viewer", orgs["xinhui"]))
    assert upload(client, SOURCE, viewer).status_code == 403
    other = auth(create_user("editor", orgs["kaiping"]))
    assert upload(client, SOURCE, other).json["error"]["code"] == "forbidden"
    assert count_events() == 0


def test_api_upload_imports_and_reports(client, orgs):
    manager = auth(create_user("manager", orgs["bureau"]))  # a manager above the organization may import too
    response = upload(client, SOURCE, manager, kind="science_carnival", draft="false")
    assert response.status_code == 200, response.json
    report = response.json
    assert {key: report[key] for key in ("status", "org", "source", "created", "updated", "unchanged", "total", "rejected")} == {
        "status": "done", "org": "xinhui", "source": "其他日历.ics", "created": 4, "updated": 0, "unchanged": 0, "total": 4,
        "rejected": 0,
    }
    assert client.get(report["url"], headers=manager).json == report
    assert client.get(report["url"], headers=auth(create_user("editor", orgs["kaiping"]))).status_code == 404
    assert upload(client, SOURCE, manager).json["unchanged"] == 4


def test_api_refusal_is_422_in_the_error_shape(client, orgs):
    editor = auth(create_user("editor", orgs["xinhui"]))
    bad = vevent("UID:r@x", "SUMMARY:太多", "DTSTART:20240720T010000Z", "RRULE:FREQ=DAILY;COUNT=999")
    response = upload(client, calendar(bad), editor)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_calendar"
    assert "not imported" in error["message"]
    assert list(error["fields"]) == ["events.r@x"] and "at most 366" in error["fields"]["events.r@x"]
    assert count_events() == 0
    partial = upload(client, calendar(CARNIVAL_UTC, bad), editor)  # the good event is imported, the other listed
    assert partial.status_code == 200 and (partial.json["created"], partial.json["rejected"]) == (1, 1)
    assert partial.json["problems"] == [{"line": 13, "uid": "r@x", "summary": "太多",
                                         "reason": "RRULE: A series may have at most 366 occurrences."}]
    assert upload(client, calendar(CARNIVAL_UTC, bad), editor, atomic="true").status_code == 422
    db.session.execute(delete(Event))
    db.session.commit()
    assert upload(client, b"hello", editor).json["error"]["fields"]["file"].startswith("line 1: Not an iCalendar file")
    assert count_events() == 0
    assert upload(client, SOURCE, editor, org="nowhere").json["error"]["fields"] == {"org": "No organization with this slug."}
    assert upload(client, SOURCE, editor, kind="party").status_code == 422
    assert upload(client, SOURCE, editor, colour="red").json["error"]["fields"] == {"colour": "Unknown field."}
    no_file = client.post("/api/v1/imports", data={"org": "xinhui"}, headers=editor, content_type="multipart/form-data")
    assert no_file.json["error"]["fields"] == {"file": "Upload the .ics file in the multipart field 'file'."}
    assert client.post("/api/v1/imports", data=b"x", headers=editor, content_type="text/calendar").status_code == 415
    no_url = client.post("/api/v1/imports", json={"org": "xinhui"}, headers=editor)
    assert no_url.json["error"]["fields"] == {"url": "Field required"}


def test_api_upload_over_the_cap_is_refused(client, orgs, app, monkeypatch):
    editor = auth(create_user("editor", orgs["xinhui"]))
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1000)
    response = upload(client, calendar(vevent("UID:big@x", "SUMMARY:" + "长" * 1000, "DTSTART:20240720T010000Z")), editor)
    assert response.status_code == 422 and "at most 1,000 bytes" in response.json["error"]["fields"]["file"]
    huge = upload(client, b"BEGIN:VCALENDAR\r\n" + b"X" * 200_000, editor)
    assert huge.status_code == 413 and huge.json["error"]["code"] == "request_entity_too_large"


def test_openapi_describes_the_import_endpoint(client):
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/imports"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    upload_schema = spec["components"]["schemas"]["ImportUpload"]
    assert upload_schema["properties"]["file"]["format"] == "binary"
    assert {"200", "202", "401", "403", "415", "422"} <= set(operation["responses"])
    assert "/api/v1/imports/{job_id}" in spec["paths"]


# --- the upload form ----------------------------------------------------------------------



def test_import_page_needs_a_signed_in_organizer(client, orgs):
    response = client.get("/organizer/import")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    login_page = client.get("/login").get_data(as_text=True)
    assert "邮箱" in login_page and "密码" in login_page  # Chinese by default (tests/test_i18n.py: English)
    user = create_user("editor", orgs["xinhui"])
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 400  # no CSRF token
    wrong = sign_in(client, user.email, "wrong-password")
    assert "邮箱或密码不正确。" in wrong.get_data(as_text=True)
    signed_in = sign_in(client, user.email, next_="?next=https://evil.example/")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/organizer"  # the dashboard, never off-site
    page = client.get("/organizer/import").get_data(as_text=True)
    assert 'value="xinhui"' in page and 'value="kaiping"' not in page  # only the user's organizations
    token = csrf_token(client.get("/organizer/import"))
    assert client.post("/logout", data={}).status_code == 400  # signing out needs the token too
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/organizer/import").status_code == 302


def test_upload_form_imports_and_shows_the_summary(client, orgs):
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    form = {"csrf_token": token, "org": "xinhui", "kind": "science_carnival", "file": (io.BytesIO(SOURCE), "other.ics")}
    page = client.post("/organizer/import", data=form, content_type="multipart/form-data")
    assert page.status_code == 303 and page.headers["Location"].startswith("/organizer/imports/")
    html = client.get(page.headers["Location"]).get_data(as_text=True)
    assert "新建</th><td>4" in html
    assert client.get("/organizer/import").get_data(as_text=True).count("other.ics") == 1  # recent imports
    assert by_uid("carnival-2024@other.example").created_by_id == user.id
    # no token: refused
    form = {"org": "xinhui", "file": (io.BytesIO(SOURCE), "other.ics")}
    assert client.post("/organizer/import", data=form, content_type="multipart/form-data").status_code == 400
    # an organization that is not the user's
    form = {"csrf_token": token, "org": "kaiping", "file": (io.BytesIO(SOURCE), "other.ics")}
    assert client.post("/organizer/import", data=form, content_type="multipart/form-data").status_code == 422


def test_upload_form_lists_problems_escaped(client, orgs):
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    bad = calendar(vevent("UID:<b>x</b>@x", "SUMMARY:<script>alert(1)</script>", "DTSTART;TZID=<i>Zone</i>:20240720T090000"))
    form = {"csrf_token": token, "org": "xinhui", "file": (io.BytesIO(bad), "<evil>.ics")}
    page = client.post("/organizer/import", data=form, content_type="multipart/form-data", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "未导入" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "TZID=&lt;i&gt;Zone&lt;/i&gt;" in html
    assert count_events() == 0


def test_upload_form_over_the_cap(client, orgs, app, monkeypatch):
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1000)
    form = {"csrf_token": token, "org": "xinhui", "file": (io.BytesIO(b"BEGIN:VCALENDAR\r\n" + b"X" * 2000), "a/b\\big.ics")}
    page = client.post("/organizer/import", data=form, content_type="multipart/form-data")
    assert page.status_code == 413 and "文件过大：最大 1,000 bytes。" in page.get_data(as_text=True)
    form["file"] = (io.BytesIO(b"X" * 200_000), "huge.ics")  # past the upload limit: refused before reading
    page = client.post("/organizer/import", data=form, content_type="multipart/form-data")
    assert page.status_code == 413 and "文件过大：最大 1,000 bytes。" in page.get_data(as_text=True)


def test_sign_in_is_rate_limited_with_a_clear_message(client, orgs):
    user = create_user("editor", orgs["xinhui"])
    for _ in range(5):
        assert sign_in(client, user.email, "wrong").status_code == 200
    refused = sign_in(client, user.email)
    assert refused.status_code == 429
    assert "登录尝试过多，请几分钟后再试。" in refused.get_data(as_text=True)


# --- fetching outside URLs ----------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append((self.path, self.headers.get("Host", "")))
        if self.path == "/calendar.ics":
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(SOURCE)))
            self.end_headers()
            self.wfile.write(SOURCE)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/calendar.ics")
            self.end_headers()
        elif self.path == "/endless":
            self.send_response(200)  # no Content-Length: the cap applies while streaming
            self.end_headers()
            self.wfile.write(b"BEGIN:VCALENDAR\r\n" + b"X" * 300_000)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.seen
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def allow_local(app, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWLIST", ["127.0.0.1/32"])


def test_local_address_refused_without_the_allowlist(ctx, server):
    base, seen = server
    with pytest.raises(UnsafeURL, match="127.0.0.1, which is not a public address"):
        safe_get(base + "/calendar.ics")
    assert seen == []  # refused before connecting


def test_fetch_with_the_allowlist_and_no_redirects(ctx, server, allow_local):
    base, seen = server
    result = safe_get(base + "/calendar.ics")
    assert (result.status, result.content) == (200, SOURCE)
    with pytest.raises(FetchError, match="redirects are not followed"):
        safe_get(base + "/moved")
    with pytest.raises(FetchError, match="404"):
        safe_get(base + "/nothing")
    with pytest.raises(FetchError, match="larger than 100,000 bytes"):
        safe_get(base + "/endless", max_bytes=100_000)
    assert [path for path, _ in seen] == ["/calendar.ics", "/moved", "/nothing", "/endless"]  # the redirect was not followed


def test_connects_to_the_checked_address_with_the_name_as_host(ctx, server, monkeypatch):
    base, seen = server
    port = int(base.rsplit(":", 1)[1])
    answers = {"calendar.example": "127.0.0.1", "internal.example": "10.0.0.5", "cgnat.example": "100.64.1.1"}
    real = http.socket.getaddrinfo

    def fake_getaddrinfo(host, port_, *args, **kwargs):
        if host in answers:
            return [(http.socket.AF_INET, http.socket.SOCK_STREAM, 6, "", (answers[host], port_))]
        return real(host, port_, *args, **kwargs)

    monkeypatch.setattr(http.socket, "getaddrinfo", fake_getaddrinfo)
    allow = Allowlist.parse(["127.0.0.1/32"])
    assert safe_get(f"http://calendar.example:{port}/calendar.ics", allowlist=allow).content == SOURCE
    assert seen == [("/calendar.ics", f"calendar.example:{port}")]
    for host in ("internal.example", "cgnat.example"):
        with pytest.raises(UnsafeURL, match="not a public address"):
            safe_get(f"http://{host}/calendar.ics", allowlist=allow)
    assert safe_get(f"http://calendar.example:{port}/calendar.ics", allowlist=Allowlist.parse(["calendar.example"])).status == 200


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for calendar.example only; yields (port, CA file, SNI names seen)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=calendar.example", "-addext", "subjectAltName=DNS:calendar.example"],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd.server_address[1], str(cert), names
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_tls_keeps_the_name_for_sni_and_the_certificate(ctx, tls_server, monkeypatch):
    port, ca_file, names = tls_server
    monkeypatch.setattr(http.socket, "getaddrinfo", lambda host, port_, *a, **k: [
        (http.socket.AF_INET, http.socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))
    ])
    allow = Allowlist.parse(["127.0.0.1/32"])
    result = safe_get(f"https://calendar.example:{port}/calendar.ics", allowlist=allow, verify=ca_file)
    assert result.content == SOURCE and names == ["calendar.example"]
    assert _Handler.seen == [("/calendar.ics", f"calendar.example:{port}")]
    with pytest.raises(FetchError, match="TLS connection to other.example failed"):  # same address, another name
        safe_get(f"https://other.example:{port}/calendar.ics", allowlist=allow, verify=ca_file)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x.ics", "file:///etc/passwd", "http://user:pw@example.org/x", "http:///x", "gopher://x"]
)
def test_only_plain_http_urls(ctx, url):
    with pytest.raises(UnsafeURL):
        safe_get(url)


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False), ("169.254.169.254", False), ("224.0.0.1", False), ("240.0.0.1", False),
    ("0.0.0.0", False), ("255.255.255.255", False), ("192.0.0.8", False), ("198.18.0.1", False),
    ("::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("fe80::1", False), ("fc00::1", False),
    ("ff02::1", False), ("2002:7f00:1::", False), ("64:ff9b::7f00:1", False), ("fec0::1", False), ("2001:db8::1", False),
])
def test_address_classes(address, public):
    assert is_public_address(ip_address(address)) is public


def test_cli_imports_from_a_url(runner, orgs, server, allow_local):
    base, _ = server
    result = runner.invoke(args=["import-ics", base + "/calendar.ics", "--org", "xinhui"])
    assert result.exit_code == 0, result.output
    assert "4 created" in result.output
    assert by_uid("carnival-2024@other.example").import_source == base + "/calendar.ics"
    moved = runner.invoke(args=["import-ics", base + "/moved", "--org", "xinhui"])
    assert moved.exit_code == 1 and "redirects are not followed" in moved.output


def test_cli_url_refused_without_the_allowlist(runner, orgs, server):
    base, seen = server
    result = runner.invoke(args=["import-ics", base + "/calendar.ics", "--org", "xinhui"])
    assert result.exit_code == 1 and "not a public address" in result.output
    assert seen == [] and count_events() == 0


def test_api_imports_from_a_url(client, orgs, server, app, monkeypatch):
    base, seen = server
    editor = auth(create_user("editor", orgs["xinhui"]))
    refused = client.post("/api/v1/imports", json={"org": "xinhui", "url": base + "/calendar.ics"}, headers=editor)
    assert refused.status_code == 422 and "not a public address" in refused.json["error"]["fields"]["url"]
    viewer = auth(create_user("viewer", orgs["xinhui"]))
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWLIST", ["127.0.0.1/32"])
    body = {"org": "xinhui", "url": base + "/calendar.ics"}
    assert client.post("/api/v1/imports", json=body, headers=viewer).status_code == 403
    assert seen == []  # nothing fetched for a user who may not import
    queued = client.post("/api/v1/imports", json={"org": "xinhui", "url": base + "/calendar.ics", "draft": True}, headers=editor)
    assert queued.status_code == 202 and queued.json["status"] == "queued"  # fetched in the background, not in the request
    assert queued.headers["Location"] == queued.json["url"] and seen == []
    assert import_jobs.run_pending() == 1
    done = client.get(queued.headers["Location"], headers=editor)
    assert done.json["status"] == "done" and done.json["created"] == 4
    assert by_uid("carnival-2024@other.example").status == "draft"
