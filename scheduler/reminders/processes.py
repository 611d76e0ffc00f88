"""The scaled-out processes: ``flask scheduler run`` and ``flask worker run``.

Scheduler: exactly one is active. It holds a session-level PostgreSQL advisory lock on
a connection of its own for as long as it lives; standbys try the lock every second and
take over when it frees (the holder stopped, or died and its connection closed). The
active one also ``LISTEN``s for reminders planned by web processes to wake up sooner.

Worker: a :class:`~scheduler.reminders.workers.SenderPool` in the foreground, woken by
``NOTIFY`` when deliveries are queued. SIGTERM (or Ctrl-C) finishes the sends in
progress, records them and gives the other claims back.
"""
from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from scheduler.extensions import db
from scheduler.reminders import engine, wakeup
from scheduler.reminders.workers import SenderPool

log = logging.getLogger(__name__)

#: The advisory lock the active scheduler holds (any fixed 64-bit number; "sched" in ASCII).
SCHEDULER_LOCK = 0x7363686564


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM and SIGINT (a second signal does the same, harmlessly)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def _listening(app: Flask, channel: str) -> Connection:
    """A connection of its own, in autocommit, listening on ``channel``."""
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    conn.exec_driver_sql(f"LISTEN {channel}")
    return conn


def run_scheduler(app: Flask, stop: threading.Event, standby_poll: float = 1.0) -> int:
    """Wait for the scheduler lock, then run the clock until ``stop``; returns an exit status."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            log.warning("not on PostgreSQL: no lock is taken, so run only one scheduler")
            engine.start(app)
            stop.wait()
            engine.stop()
            return 0
        conn = _listening(app, wakeup.REMINDERS_CHANNEL)
        try:
            announced = False
            while not conn.scalar(select(func.pg_try_advisory_lock(SCHEDULER_LOCK))):
                if not announced:
                    log.info("standby: another scheduler holds the lock; taking over when it frees")
                    announced = True
                if stop.wait(standby_poll):
                    return 0
            log.info("active: holding the scheduler lock")
            engine.start(app)
            raw = conn.connection.driver_connection
            while not stop.is_set():
                for note in raw.notifies(timeout=1.0, stop_after=1):
                    try:
                        engine.reminders_planned(dt.datetime.fromisoformat(note.payload))
                    except ValueError:
                        log.warning("ignored a malformed wake-up: %r", note.payload)
            return 0
        except Exception:
            log.exception("the scheduler's lock connection failed: stopping (a standby takes over)")
            return 1
        finally:
            engine.stop()
            try:
                conn.invalidate()  # ends the database session (back in the pool it would keep the lock)
                conn.close()
            except Exception:
                pass


def run_worker(app: Flask, concurrency: int, stop: threading.Event) -> int:
    """Send deliveries with ``concurrency`` threads until ``stop``; returns an exit status."""
    pool = SenderPool(app, concurrency, name="worker")
    listener = None
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            listener = threading.Thread(target=_wake_on_notify, args=(app, pool, stop), name="worker-listen", daemon=True)
            listener.start()
    watcher = threading.Thread(target=lambda: (stop.wait(), pool.stop(timeout=0)), name="worker-stop", daemon=True)
    watcher.start()
    log.info("worker started with %d sender threads", concurrency)
    pool.run()
    log.info("worker stopped after %d sends", pool.processed)
    return 0


def _wake_on_notify(app: Flask, pool: SenderPool, stop: threading.Event) -> None:
    """Wake the pool whenever deliveries are queued anywhere (reconnects after an error)."""
    while not stop.is_set():
        try:
            with app.app_context():
                conn = _listening(app, wakeup.DELIVERIES_CHANNEL)
                raw = conn.connection.driver_connection
                try:
                    while not stop.is_set():
                        for _ in raw.notifies(timeout=1.0, stop_after=1):
                            pool.wake()
                finally:
                    conn.invalidate()  # ends the session and its LISTEN
                    conn.close()
        except Exception:
            log.exception("listening for new deliveries failed; polling until it reconnects")
            stop.wait(5)
