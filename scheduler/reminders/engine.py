"""The clock: APScheduler jobs with fixed ids that wake the dispatcher and run housekeeping.

The database is the truth; APScheduler (in-memory job store) only decides *when* to
look. A date job ``dispatch`` is set to the earliest pending reminder's
``scheduled_at`` (less :data:`LOOKAHEAD`: the deliveries are written a few seconds
ahead and senders wake for their time), moved after every run and whenever a commit
plans an earlier one; a safety poll runs the same function every 30 seconds in case a
wake-up was missed.
Job functions are module-level and take no arguments; each runs in its own
application context and commits.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from flask import Flask

from scheduler.extensions import apscheduler, db
from scheduler.feeds import import_jobs
from scheduler.reminders import wakeup
from scheduler.reminders.workers import SenderPool

log = logging.getLogger(__name__)
_app: Flask | None = None
_pool: SenderPool | None = None
#: Reading the next due time and moving the date job happen together (see :func:`reminders_planned`).
_schedule_lock = threading.Lock()
_dispatch_lock = threading.Lock()
DISPATCH_BATCH = 200
SAFETY_POLL_SECONDS = 30
#: How often the scheduler looks for calendar imports queued by another process.
IMPORT_POLL_SECONDS = 5
#: Deliveries of reminders due this soon are written ahead, to leave exactly on time.
LOOKAHEAD = dt.timedelta(seconds=10)


def dispatch_job() -> None:
    """Turn every due reminder into deliveries, then set the date job to the next one."""
    from scheduler.reminders.dispatch import dispatch_due
    from scheduler.reminders.plan import next_due

    assert _app is not None
    with _dispatch_lock, _app.app_context():
        try:
            while dispatch_due(limit=DISPATCH_BATCH, lookahead=LOOKAHEAD) == DISPATCH_BATCH:
                db.session.commit()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("dispatching due reminders failed; the safety poll tries again")
        with _schedule_lock:
            _set_dispatch_job(next_due())
            db.session.rollback()


def _set_dispatch_job(when: dt.datetime | None) -> None:
    if when is None:
        if apscheduler.get_job("dispatch"):
            apscheduler.remove_job("dispatch")
        return
    # max_instances=2: the job moves itself while running, and a wake-up already due then
    # fires at once; it waits for the running one (the lock) instead of being skipped.
    apscheduler.add_job(dispatch_job, "date", run_date=when - LOOKAHEAD, id="dispatch", replace_existing=True,
                        misfire_grace_time=None, coalesce=True, max_instances=2)


def reminders_planned(earliest: dt.datetime) -> None:
    """A commit planned a reminder due at ``earliest``: wake up then if that is sooner."""
    if not apscheduler.running:
        return
    with _schedule_lock:
        job = apscheduler.get_job("dispatch")
        if job is None or job.next_run_time is None or earliest - LOOKAHEAD < job.next_run_time:
            _set_dispatch_job(earliest)


def _housekeeping(what: str, work: Callable[[], object]) -> object:
    """Run ``work`` in the application's context and commit; log (and roll back) a failure."""
    assert _app is not None
    with _app.app_context():
        try:
            result = work()
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            log.exception("%s failed", what)
            return None


def complete_finished_events_job() -> None:
    """Mark events whose last occurrence has ended as completed."""
    from scheduler.events.operations import complete_finished_events

    count = _housekeeping("completing finished events", complete_finished_events)
    if count:
        log.info("marked %d finished events completed", count)


def pace_alerts_job() -> None:
    """Tell organizations whose targets fall behind their pace (at most weekly per target)."""
    from zoneinfo import ZoneInfo

    from scheduler.targets.alerts import alert_behind_pace
    from scheduler.util.time import now

    assert _app is not None
    tz = ZoneInfo(_app.config["TIMEZONE"])
    _housekeeping("checking the targets' pace", lambda: alert_behind_pace(now(), tz))


def purge_job() -> None:
    """Delete finished deliveries past ``DELIVERY_RETENTION_DAYS`` (see :mod:`scheduler.reminders.retention`),
    and finished calendar imports past a month."""
    from scheduler.reminders.retention import purge

    purged = _housekeeping("purging old deliveries", purge)
    if purged:
        log.info("purged %s", purged)
    _housekeeping("purging finished calendar imports", import_jobs.purge_jobs)


def privacy_purge_job() -> None:
    """Anonymize and delete participants' data past ``REGISTRATION_RETENTION_DAYS`` (see
    :mod:`scheduler.privacy.retention`)."""
    from scheduler.privacy.retention import purge_personal_data

    purged = _housekeeping("purging personal data", purge_personal_data)
    if purged:
        log.info("privacy purge: %s", purged)


def import_jobs_job() -> None:
    """Run the calendar imports waiting in the background (see :mod:`scheduler.feeds.import_jobs`)."""
    from scheduler.feeds.import_jobs import run_pending

    _housekeeping("running calendar imports", run_pending)


def imports_queued() -> None:
    """An import was queued in this process: run it now rather than at the next poll."""
    if apscheduler.running:
        apscheduler.add_job(import_jobs_job, id="imports_now", replace_existing=True, misfire_grace_time=None,
                            coalesce=True, max_instances=1)


def start(app: Flask, *, senders: int = 0) -> None:
    """Start the scheduler in this process, with ``senders`` sender threads (0: none, workers send).

    Embedded mode starts both; ``flask scheduler run`` only the clock. Anything that
    fell due while no scheduler ran is dispatched at once.
    """
    global _app, _pool
    _app = app
    wakeup.on_reminders(reminders_planned)
    if senders and _pool is None:
        _pool = SenderPool(app, senders, name="sender")
        _pool.start()
        wakeup.on_deliveries(_pool.wake)
    apscheduler.add_job(
        complete_finished_events_job, "interval", minutes=10, id="complete_finished_events",
        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=300,
    )
    apscheduler.add_job(pace_alerts_job, "cron", hour=9, minute=0, timezone=app.config["TIMEZONE"], id="pace_alerts",
                        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=3600)
    apscheduler.add_job(purge_job, "cron", hour=3, minute=30, timezone=app.config["TIMEZONE"], id="purge",
                        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=3600)
    apscheduler.add_job(privacy_purge_job, "cron", hour=3, minute=40, timezone=app.config["TIMEZONE"],
                        id="privacy_purge", replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=3600)
    import_jobs.on_queued(imports_queued)
    apscheduler.add_job(import_jobs_job, "interval", seconds=IMPORT_POLL_SECONDS, id="imports_poll",
                        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=IMPORT_POLL_SECONDS)
    apscheduler.add_job(dispatch_job, "interval", seconds=SAFETY_POLL_SECONDS, id="dispatch_poll",
                        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=SAFETY_POLL_SECONDS)
    apscheduler.add_job(dispatch_job, id="dispatch", replace_existing=True, misfire_grace_time=None, max_instances=2)  # now: catch up
    if not apscheduler.running:
        apscheduler.start()
    log.info("scheduler started in-process%s", f" with {senders} sender threads" if senders else "")


def stop() -> None:
    """Stop the clock and the sender threads (in-flight sends finish and are recorded)."""
    global _pool
    wakeup.clear_callbacks()
    import_jobs.clear_callbacks()
    if apscheduler.running:
        apscheduler.shutdown(wait=False)
    if _pool is not None:
        _pool.stop()
        _pool = None
