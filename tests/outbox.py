"""Reading the outbox in tests, and moving the engine along with the injected clock."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from scheduler.extensions import db
from scheduler.reminders.dispatch import dispatch_due
from scheduler.reminders.models import Delivery
from scheduler.reminders.sender import run_once


def deliveries(**where: Any) -> list[Delivery]:
    """Deliveries matching ``column=value`` filters, oldest first, read afresh."""
    db.session.expire_all()
    stmt = select(Delivery).order_by(Delivery.created_at, Delivery.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(Delivery, name) == value)
    return list(db.session.scalars(stmt))


def only(**where: Any) -> Delivery:
    """The one delivery matching the filters."""
    [delivery] = deliveries(**where)
    return delivery


def fresh(row: Any) -> Any:
    """``row`` read again from the database."""
    db.session.expire_all()
    return db.session.get(type(row), row.id)


def tick(clock: Any, when: dt.datetime) -> int:
    """Move the clock, turn due reminders into deliveries, send what is due; how many were sent or tried."""
    clock.set(when)
    dispatch_due()
    db.session.commit()
    return run_once()
