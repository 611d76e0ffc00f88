"""What organizers bring: moved occurrences, endless series, Outlook's own zones, private and
zero-length events, this application's own feeds, in the page's language, as a background job."""
import contextlib
import datetime as dt
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import flask_migrate
import pytest
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import scoped_session, sessionmaker

from scheduler import create_app

from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.feeds import import_jobs
from scheduler.feeds.models import ImportJob
from scheduler.util.time import UTC, frozen
from tests.factories import CST, create_event, create_org, create_user
from tests.pages import csrf_token, sign_in
from tests.test_import import CARNIVAL_UTC, TECH_WEEK_ALL_DAY, by_uid, calendar, count_events, do_import, orgs, vevent

__all__ = ["orgs"]

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

# Outlook: a series at 19:30 Beijing time, one occurrence moved to Sunday, one cancelled.
MOVED = calendar(
    vevent("UID:040000008200E00074C5B7101A82E008@outlook", "SUMMARY:周六观星", "DTSTART;TZID=China Standard Time:20240706T193000",
           "DTEND;TZID=China Standard Time:20240706T213000", "RRULE:FREQ=WEEKLY;COUNT=4"),
    vevent("UID:040000008200E00074C5B7101A82E008@outlook", "SUMMARY:周日观星(改期)",
           "RECURRENCE-ID;TZID=China Standard Time:20240713T193000",
           "DTSTART;TZID=China Standard Time:20240714T200000", "DTEND;TZID=China Standard Time:20240714T220000"),
    vevent("UID:040000008200E00074C5B7101A82E008@outlook", "SUMMARY:周六观星", "STATUS:CANCELLED",
           "RECURRENCE-ID;TZID=China Standard Time:20240720T193000", "DTSTART;TZID=China Standard Time:20240720T193000"),
)
SERIES_UID = "040000008200E00074C5B7101A82E008@outlook"


def test_a_moved_occurrence_is_a_one_off_event_linked_to_its_series(orgs):
    summary = do_import(MOVED, orgs["xinhui"])
    assert (summary.created, summary.rejected) == (2, 0)
    series = by_uid(SERIES_UID)
    assert series.exdates == [dt.datetime(2024, 7, 13, 11, 30, tzinfo=UTC).isoformat(),
                              dt.datetime(2024, 7, 20, 11, 30, tzinfo=UTC).isoformat()]
    moved = by_uid(SERIES_UID + "/20240713T113000Z")
    assert (moved.title, moved.series_id, moved.recurrence_id) == ("周日观星(改期)", series.id, dt.datetime(2024, 7, 13, 11, 30, tzinfo=UTC))
    assert moved.starts_at == dt.datetime(2024, 7, 14, 12, 0, tzinfo=UTC) and moved.rrule is None
    assert moved.kind == series.kind
    assert [n.reason for n in summary.notes] == ["A moved occurrence of a series: imported as a one-off event linked to the series."]
    again = do_import(MOVED, orgs["xinhui"])  # importing again changes nothing
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_a_series_without_an_end_is_kept_a_year_ahead(orgs):
    weekly = calendar(vevent("UID:club@x", "SUMMARY:科学俱乐部", "DTSTART;TZID=Asia/Shanghai:20240706T150000",
                             "DTEND;TZID=Asia/Shanghai:20240706T163000", "RRULE:FREQ=WEEKLY;BYDAY=SA"))
    with frozen(dt.datetime(2024, 6, 10, tzinfo=UTC)):  # a series starting next month: from its start
        summary = do_import(weekly, orgs["xinhui"])
    club = by_uid("club@x")
    assert club.starts_at == dt.datetime(2024, 7, 6, 7, 0, tzinfo=UTC)
    assert club.rrule == "FREQ=WEEKLY;BYDAY=SA;UNTIL=20250705T070000Z"  # the last Saturday within 365 days
    assert summary.notes[0].reason == ("A series without an end: imported from 2024-07-06 to 2025-07-05 (365 days ahead); "
                                      "import the calendar again to extend it.")
    with frozen(dt.datetime(2024, 6, 20, tzinfo=UTC)):
        assert do_import(weekly, orgs["xinhui"]).unchanged == 1
    with frozen(dt.datetime(2025, 3, 10, tzinfo=UTC)):  # begun long ago: from its first Saturday this month
        assert do_import(weekly, orgs["xinhui"]).updated == 1
    club = by_uid("club@x")
    assert club.starts_at == dt.datetime(2025, 3, 1, 7, 0, tzinfo=UTC)
    assert club.rrule.endswith("UNTIL=20260228T070000Z")


OUTLOOK_CUSTOM_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\nDTSTART:16011028T030000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nTZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)
NOWHERE_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Nowhere\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0817\r\n"
    "TZOFFSETTO:+0817\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def test_outlook_customized_time_zone_is_matched_by_its_offsets(orgs):
    data = calendar(
        vevent("UID:berlin@x", "SUMMARY:柏林连线", "DTSTART;TZID=\"Customized Time Zone\":20240710T140000",
               "DTEND;TZID=\"Customized Time Zone\":20240710T150000"),
        vevent("UID:nowhere@x", "SUMMARY:无处", "DTSTART;TZID=Nowhere:20240710T140000"),
        head=OUTLOOK_CUSTOM_ZONE + NOWHERE_ZONE,
    )
    summary = do_import(data, orgs["xinhui"])
    berlin = by_uid("berlin@x")
    assert berlin.starts_at == dt.datetime(2024, 7, 10, 12, 0, tzinfo=UTC)  # 14:00 at +02:00 (summer)
    assert berlin.timezone.startswith("Europe/")
    assert "is read as Europe/" in summary.notes[0].reason
    [problem] = summary.problems
    assert problem.uid == "nowhere@x" and "matches no known zone" in problem.reason


def test_private_and_zero_length_events(orgs):
    data = calendar(
        CARNIVAL_UTC,
        vevent("UID:p@x", "SUMMARY:私人约会", "CLASS:PRIVATE", "DTSTART:20240720T010000Z"),
        vevent("UID:deadline@x", "SUMMARY:报名截止", "DTSTART:20240725T090000Z", "DTEND:20240725T090000Z"),
    )
    summary = do_import(data, orgs["xinhui"])
    assert summary.created == 2 and [p.uid for p in summary.problems] == ["p@x"]
    assert "private events are not imported" in summary.problems[0].reason
    deadline = by_uid("deadline@x")
    assert deadline.ends_at - deadline.starts_at == dt.timedelta(minutes=1)
    assert [n.reason for n in summary.notes] == ["A zero-length event: imported as lasting one minute."]


def test_this_applications_own_feed_imports_again_with_kinds_and_details(orgs, client):
    day = dt.datetime(2027, 5, 8, 9, 0, tzinfo=CST)
    fair = create_event(orgs["xinhui"], publish=True, kind="matchmaking", title="成果对接会", starts_at=day,
                        ends_at=day + dt.timedelta(hours=3), details={"sector": "new_energy", "partners": ["五邑大学"]})
    tour = create_event(orgs["xinhui"], publish=True, title="研学", starts_at=day, ends_at=day + dt.timedelta(hours=3))
    contest = create_event(orgs["xinhui"], publish=True, kind="contest", title="创新创业大赛", starts_at=day,
                           ends_at=day + dt.timedelta(hours=5), details={"registration_deadline": "2027-04-30T18:00:00+08:00",
                                                                         "final_at": "2027-05-08T09:00:00+08:00"})
    from scheduler.events import operations

    operations.cancel_event(tour, "天气")
    db.session.commit()
    feed = client.get("/calendars/all.ics").data
    kept = {e.uid: (e.kind, e.details, e.title) for e in (fair, tour, contest)}
    db.session.execute(delete(Event))
    db.session.commit()
    summary = do_import(feed, orgs["kaiping"])
    assert (summary.created, summary.rejected) == (3, 0), summary.problems
    assert {uid: (by_uid(uid).kind, by_uid(uid).details, by_uid(uid).title) for uid in kept} == kept
    assert by_uid(tour.uid).status == "cancelled"


def test_problems_are_shown_in_the_pages_language(client, orgs):
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    data = calendar(CARNIVAL_UTC, vevent("UID:p@x", "SUMMARY:私人", "CLASS:PRIVATE", "DTSTART:20240720T010000Z"),
                    vevent("UID:tz@x", "SUMMARY:火星", "DTSTART;TZID=Mars/Base:20240720T090000"))
    for lang, private, zone in (("zh", "私人活动不导入公开日历", "未知时区"), ("en", "private events are not imported", "unknown time zone")):
        token = csrf_token(client.get(f"/organizer/import?lang={lang}"))
        form = {"csrf_token": token, "org": "xinhui", "file": (io.BytesIO(data), "mixed.ics"), "dry_run": "y"}
        page = client.post("/organizer/import", data=form, content_type="multipart/form-data", follow_redirects=True)
        html = page.get_data(as_text=True)
        assert private in html and zone in html, html
        assert '<td>13</td>' in html and "<code>p@x</code>" in html  # line and UID of each
    assert count_events() == 0  # dry runs


def test_a_dry_run_then_import_now(client, orgs):
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    form = {"csrf_token": token, "org": "xinhui", "file": (io.BytesIO(calendar(CARNIVAL_UTC)), "a.ics"), "dry_run": "y"}
    page = client.post("/organizer/import", data=form, content_type="multipart/form-data", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "新建</th><td>1" in html and count_events() == 0
    action = html.split('<form method="post" action="/organizer/imports/')[1].split('"')[0]
    action = "/organizer/imports/" + action
    assert client.post(action, data={}).status_code == 400  # the form's token is needed
    done = client.post(action, data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "新建</th><td>1" in done.get_data(as_text=True) and count_events() == 1
    other = create_user("editor", orgs["kaiping"])
    sign_in(client, other.email)
    assert client.get(action.removesuffix("/import")).status_code == 404  # another organization's import


def test_a_large_file_is_imported_in_the_background_with_progress(client, orgs, app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_BYTES", 100)
    monkeypatch.setattr(import_jobs, "BATCH", 2)
    beats = []
    real_beat = import_jobs._beat
    monkeypatch.setattr(import_jobs, "_beat", lambda job_id, **values: beats.append(values) or real_beat(job_id, **values))
    events = [vevent(f"UID:e{i}@x", f"SUMMARY:活动{i}", f"DTSTART:202407{10 + i}T010000Z") for i in range(5)]
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    form = {"csrf_token": token, "org": "xinhui", "file": (io.BytesIO(calendar(*events)), "big.ics")}
    posted = client.post("/organizer/import", data=form, content_type="multipart/form-data")
    waiting = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in waiting and "等待开始" in waiting and count_events() == 0
    assert import_jobs.run_pending() == 1
    assert [b["done"] for b in beats if "done" in b] == [2, 4]  # committed a batch at a time
    report = client.get(posted.headers["Location"]).get_data(as_text=True)
    assert "http-equiv" not in report and "新建</th><td>5" in report
    job = db.session.scalar(select(ImportJob))
    assert job.data is None and (job.done, job.total) == (5, 5)


def test_an_interrupted_job_is_marked_failed(orgs):
    job = import_jobs.queue_import(org=orgs["xinhui"], user=None, source="x.ics", data=calendar(CARNIVAL_UTC), kind="science_carnival")
    job.status, job.heartbeat_at = "running", dt.datetime(2024, 1, 1, tzinfo=UTC)
    db.session.commit()
    with frozen(dt.datetime(2024, 1, 1, 0, 11, tzinfo=UTC)):
        import_jobs.run_pending()
    db.session.refresh(job)
    assert job.status == "failed" and "interrupted" in import_jobs.summary_of(job).problems[0].reason and job.data is None


@pytest.fixture
def own_sqlite_app(tmp_path, db_session):
    """The application on a SQLite file of its own, committing for real (the suite's session never does)."""
    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'own.db'}", "SECRET_KEY": "test",
        "SCHEDULER_MODE": "off", "BASE_URL": "http://scheduler.test", "SERVER_NAME": None,
        "RATELIMIT_STORAGE_URI": "memory://", "OUTBOUND_ALLOWLIST": ["127.0.0.1/32"],
    })
    with app.app_context():
        flask_migrate.upgrade()
        real = scoped_session(sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
        saved, db.session = db.session, real
        try:
            yield app
        finally:
            real.remove()
            db.session = saved
            db.engine.dispose()


def test_nothing_is_locked_while_a_url_is_fetched(own_sqlite_app):
    """On SQLite a transaction holds the whole database: the fetch must happen outside one."""
    writes = []

    def write_meanwhile():  # what another request does while the calendar's server takes its time
        engine = create_engine(own_sqlite_app.config["SQLALCHEMY_DATABASE_URI"])
        try:
            with engine.begin() as connection:  # BEGIN IMMEDIATE (scheduler/database.py): the write lock
                connection.execute(text("UPDATE organizations SET name_en = name_en"))
            writes.append("ok")
        except Exception as exc:  # noqa: BLE001
            writes.append(repr(exc))
        finally:
            engine.dispose()

    with calendar_server(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY), before=write_meanwhile) as url:
        org = create_org("own-org")
        job = import_jobs.queue_import(org=org, user=None, source=url, data=None, kind="science_carnival")
        db.session.commit()
        assert import_jobs.run_pending() == 1
    assert writes == ["ok"]
    db.session.refresh(job)
    assert (job.status, job.created) == ("done", 2)


def test_a_url_is_imported_in_the_background(client, orgs, app, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWLIST", ["127.0.0.1/32"])
    user = create_user("editor", orgs["xinhui"])
    sign_in(client, user.email)
    token = csrf_token(client.get("/organizer/import"))
    fetched = []
    with calendar_server(calendar(CARNIVAL_UTC, TECH_WEEK_ALL_DAY), before=lambda: fetched.append(1)) as url:
        posted = client.post("/organizer/import", data={"csrf_token": token, "org": "xinhui", "url": url})
        assert posted.status_code == 303 and fetched == []  # queued: the request fetched nothing
        fetching = client.get(posted.headers["Location"]).get_data(as_text=True)
        assert "http-equiv" in fetching
        assert import_jobs.run_pending() == 1 and fetched == [1]
    assert "新建</th><td>2" in client.get(posted.headers["Location"]).get_data(as_text=True)
    refused = client.post("/organizer/import", data={"csrf_token": token, "org": "xinhui", "url": "http://10.0.0.1/x.ics"})
    assert refused.status_code == 422 and "not a public address" in refused.get_data(as_text=True)
    both = client.post("/organizer/import", data={"csrf_token": token, "org": "xinhui", "url": url,
                                                  "file": (io.BytesIO(b"x"), "a.ics")}, content_type="multipart/form-data")
    assert both.status_code == 422


@contextlib.contextmanager
def calendar_server(body: bytes, *, before=lambda: None):
    """A calendar at a 127.0.0.1 URL; ``before`` runs as each request arrives, before the answer."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            before()
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/calendar.ics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_invisible_characters_are_dropped_from_imported_text(orgs):
    data = calendar(vevent("UID:rtl@x", "SUMMARY:科普\u202e日\u200b", "LOCATION:\ufeff江门科技馆", "DTSTART:20240720T010000Z"))
    do_import(data, orgs["xinhui"])
    event = by_uid("rtl@x")
    assert (event.title, event.venue) == ("科普日", "江门科技馆")
