"""Reminder model: one planned reminder of one occurrence of an event."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


class ReminderStatus(StrEnum):
    """pending → dispatched (its deliveries exist) | cancelled (plan changed) | expired (event began first)."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Reminder(db.Model):
    """When to remind everyone concerned of one occurrence. The database, not the
    scheduler's job store, is the truth: the dispatcher reads ``scheduled_at``."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("event_id", "occurrence_start", "offset"),
        Index("ix_reminders_status_scheduled", "status", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    #: The occurrence reminded of (the event's start unless recurring).
    occurrence_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: ``P1D`` (before the start), or ``registration_deadline:P3D`` for another anchor.
    offset: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PENDING.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
