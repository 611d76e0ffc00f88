"""Waking the dispatcher and the senders when their work changes, without polling for it.

Operations call :func:`reminders_planned` and :func:`deliveries_queued` inside their
transaction. On PostgreSQL that sends a ``NOTIFY`` (delivered only if the transaction
commits) to the scheduler and worker processes listening on other machines; in the
embedded mode, the callbacks registered here run after the commit in this process.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: PostgreSQL channels the processes listen on.
REMINDERS_CHANNEL = "scheduler_reminders"
DELIVERIES_CHANNEL = "scheduler_deliveries"

_on_reminders: list[Callable[[dt.datetime], None]] = []
_on_deliveries: list[Callable[[], None]] = []


def reminders_planned(session: Session, earliest: dt.datetime) -> None:
    """A pending reminder now falls due at ``earliest``: the dispatcher may need to wake sooner."""
    known = session.info.get("wake_reminders")
    session.info["wake_reminders"] = earliest if known is None else min(known, earliest)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(REMINDERS_CHANNEL, earliest.isoformat())))


def deliveries_queued(session: Session) -> None:
    """New deliveries are waiting: senders should claim them."""
    if session.info.get("wake_deliveries"):
        return
    session.info["wake_deliveries"] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(DELIVERIES_CHANNEL, "")))


def on_reminders(callback: Callable[[dt.datetime], None]) -> None:
    """Call ``callback(earliest)`` in this process after a commit that planned reminders."""
    if callback not in _on_reminders:
        _on_reminders.append(callback)


def on_deliveries(callback: Callable[[], None]) -> None:
    """Call ``callback()`` in this process after a commit that queued deliveries."""
    if callback not in _on_deliveries:
        _on_deliveries.append(callback)


def clear_callbacks() -> None:
    """Forget every callback (the engine stopped)."""
    _on_reminders.clear()
    _on_deliveries.clear()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    earliest = session.info.pop("wake_reminders", None)
    queued = session.info.pop("wake_deliveries", None)
    try:
        if earliest is not None:
            for callback in list(_on_reminders):
                callback(earliest)
        if queued:
            for callback in list(_on_deliveries):
                callback()
    except Exception:  # waking is an optimisation: the safety poll still finds the work
        log.exception("waking the engine failed")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("wake_reminders", None)
    session.info.pop("wake_deliveries", None)
