"""The clock: APScheduler jobs with fixed ids that run the housekeeping of the plan.

Job functions are module-level and take no arguments, so they can be stored and
replaced safely; each runs in its own application context and commits once.
"""
from __future__ import annotations

import logging

from flask import Flask

from scheduler.extensions import apscheduler, db

log = logging.getLogger(__name__)
_app: Flask | None = None


def complete_finished_events_job() -> None:
    """Mark events whose last occurrence has ended as completed."""
    from scheduler.events.operations import complete_finished_events

    assert _app is not None
    with _app.app_context():
        try:
            count = complete_finished_events()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("completing finished events failed")
            return
    if count:
        log.info("marked %d finished events completed", count)


def start(app: Flask) -> None:
    """Start the in-process scheduler (embedded mode) with its housekeeping jobs."""
    global _app
    _app = app
    apscheduler.add_job(
        complete_finished_events_job, "interval", minutes=10, id="complete_finished_events",
        replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=300,
    )
    if not apscheduler.running:
        apscheduler.start()
    log.info("scheduler started in-process")


def stop() -> None:
    """Stop the scheduler without waiting for the jobs in progress."""
    if apscheduler.running:
        apscheduler.shutdown(wait=False)
