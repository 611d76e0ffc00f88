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
        assert jobs == ["complete_finished_events", "dispatch", "dispatch_poll"]
    finally:
        engine.stop()
        apscheduler.remove_all_jobs()
