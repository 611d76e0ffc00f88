"""How long the delivery log is kept.

Finished deliveries (sent, dead, expired, cancelled, unknown) whose last change is older than
``DELIVERY_RETENTION_DAYS`` (180 by default; 0 keeps them for ever) are deleted, with the
outbox messages no delivery uses any more, and the daily text counts of days long gone.
Deliveries still waiting or in flight are never touched, whatever their age. Deleting goes in
batches of :data:`BATCH`, each its own transaction, so the senders are never held up for long.
The scheduler runs :func:`purge` nightly; ``flask deliveries purge`` runs it by hand.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, exists, select

from scheduler.channels.sms.models import SmsDailyCount
from scheduler.extensions import db
from scheduler.reminders.models import FINAL, Delivery, OutboxMessage
from scheduler.util.time import now

BATCH = 5000
#: Daily text counts matter for today only; a month is kept to answer questions.
SMS_COUNTS_KEPT = dt.timedelta(days=31)


@dataclass(frozen=True)
class Purged:
    """What one purge deleted."""

    deliveries: int
    messages: int
    sms_counts: int


def cutoff(at: dt.datetime, days: int) -> dt.datetime | None:
    """The moment before which finished deliveries go (``None``: ``days`` is 0, keep everything)."""
    return at - dt.timedelta(days=days) if days > 0 else None


def purge(at: dt.datetime | None = None, days: int | None = None) -> Purged:
    """Delete what is past keeping (committing each batch); what was deleted."""
    at = at or now()
    days = current_app.config["DELIVERY_RETENTION_DAYS"] if days is None else days
    before = cutoff(at, days)
    deliveries = messages = 0
    if before is not None:
        past = (Delivery.status.in_(FINAL), Delivery.updated_at < before)
        old = select(Delivery.id).where(*past).limit(BATCH)
        # ``past`` again on the DELETE itself: PostgreSQL re-checks it on a row a replay changed meanwhile
        while count := db.session.execute(delete(Delivery).where(Delivery.id.in_(old), *past)).rowcount:
            db.session.commit()
            deliveries += count
        unused = (
            select(OutboxMessage.id)
            .where(OutboxMessage.created_at < before, ~exists().where(Delivery.message_id == OutboxMessage.id))
            .limit(BATCH)
        )
        while count := db.session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(unused))).rowcount:
            db.session.commit()
            messages += count
    last_day = (at - SMS_COUNTS_KEPT).date()
    sms_counts = db.session.execute(delete(SmsDailyCount).where(SmsDailyCount.day < last_day)).rowcount
    db.session.commit()
    return Purged(deliveries, messages, sms_counts)
