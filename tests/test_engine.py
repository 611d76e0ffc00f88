"""The in-process clock's housekeeping, driven by the injected clock (nothing sleeps)."""
import datetime as dt

from scheduler.events.models import Event
from scheduler.extensions import apscheduler, db
from scheduler.reminders import engine
from tests.factories import CST, create_event, create_org


def test_finished_events_become_completed(app, ctx, clock):
    org = create_org("wyu")
    event = create_event(org, publish=True)  # 22 June 09:00-12:00
    running = create_event(org, publish=True, starts_at=dt.datetime(2024, 6, 22, 9, tzinfo=CST), ends_at=dt.datetime(2024, 6, 30, tzinfo=CST))
    engine._app = app
    engine.complete_finished_events_job()
    assert db.session.get(Event, event.id).status == "published"
    clock.set(dt.datetime(2024, 6, 22, 12, 0, tzinfo=CST))
    engine.complete_finished_events_job()  # its own app context and session, like the real thread
    db.session.expire_all()
    finished = db.session.get(Event, event.id)
    assert (finished.status, finished.sequence) == ("completed", 2)
    assert db.session.get(Event, running.id).status == "published"


def test_start_registers_jobs_with_fixed_ids(app, monkeypatch):
    real_start = apscheduler.start
    monkeypatch.setattr(apscheduler, "start", lambda: real_start(paused=True))  # register, never run, the jobs
    try:
        engine.start(app)
        engine.start(app)  # a second start replaces, never duplicates
        jobs = sorted(job.id for job in apscheduler.get_jobs())
        assert jobs == ["complete_finished_events", "dispatch", "dispatch_poll", "imports_poll", "pace_alerts", "privacy_purge", "purge"]
        privacy = apscheduler.get_job("privacy_purge").trigger  # nightly at 03:40, the app's time zone
        assert (str(privacy.timezone), str(privacy.fields[5]), str(privacy.fields[6])) == (app.config["TIMEZONE"], "3", "40")
    finally:
        engine.stop()
        apscheduler.remove_all_jobs()


def test_an_earlier_reminder_moves_the_dispatch_job_and_a_later_one_does_not(app, monkeypatch):
    real_start = apscheduler.start
    monkeypatch.setattr(apscheduler, "start", lambda: real_start(paused=True))
    soon = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=2)
    try:
        engine.start(app)
        engine._set_dispatch_job(soon)
        engine.reminders_planned(soon + dt.timedelta(hours=1))
        assert apscheduler.get_job("dispatch").next_run_time == soon - engine.LOOKAHEAD
        engine.reminders_planned(soon - dt.timedelta(minutes=30))
        assert apscheduler.get_job("dispatch").next_run_time == soon - dt.timedelta(minutes=30) - engine.LOOKAHEAD
    finally:
        engine.stop()
        apscheduler.remove_all_jobs()


def test_a_commit_that_plans_reminders_wakes_the_engine(app, ctx):
    from scheduler.reminders import wakeup

    planned, queued = [], []
    wakeup.on_reminders(planned.append)
    wakeup.on_deliveries(lambda: queued.append(True))
    try:
        event = create_event(create_org("wyu"))
        db.session.commit()
        assert planned == [] and queued == []  # a draft plans nothing
        from scheduler.events.operations import publish_event

        publish_event(event)
        db.session.commit()
        assert [p.astimezone(CST) for p in planned] == [dt.datetime(2024, 6, 19, 9, tzinfo=CST)]  # the tour's P3D
        assert queued == []  # no endpoint subscribed: nothing queued
    finally:
        wakeup.clear_callbacks()
