"""Reminders (one per occurrence and offset) and deliveries (the outbox of messages)."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


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
        Index("ix_reminders_status_dispatch", "status", "dispatch_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    #: The occurrence reminded of (the event's start unless recurring).
    occurrence_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: ``P1D`` (before the start), or ``registration_deadline:P3D`` for another anchor.
    offset: Mapped[str] = mapped_column(String(64))
    #: When it is due (the occurrence's start, or its anchor, less the offset).
    scheduled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: When the dispatcher writes its deliveries: ``scheduled_at``, or earlier when a text due
    #: in the night must go the evening before (each delivery still waits for its own time).
    dispatch_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PENDING.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)


class DeliveryStatus(StrEnum):
    """The life of one message to one recipient on one channel.

    pending → sending (claimed, leased) → sent | retrying → … → dead; ``expired`` when
    the event began before it could go; ``cancelled`` when it should not go any more
    (plan changed, endpoint disabled or deleted); ``unknown`` when a provider may have
    taken it but did not say (never re-sent blindly; SMS in the next step).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    DEAD = "dead"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


#: States a delivery is waiting to be sent in.
WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)
#: States that end a delivery's life (replay starts it again with the same key).
FINAL = (DeliveryStatus.SENT.value, DeliveryStatus.DEAD.value, DeliveryStatus.EXPIRED.value,
         DeliveryStatus.CANCELLED.value, DeliveryStatus.UNKNOWN.value)


class OutboxMessage(db.Model):
    """One message as built when it was queued, shared by all its deliveries (a reminder
    fanned out to a hundred endpoints is stored once, and every attempt sends the same body)."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    #: ``{"timestamp", "data"}``; the body sent is ``{"type", "timestamp", "data"}``.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)


class Delivery(db.Model):
    """The outbox: one message to one recipient on one channel, and how sending it went.

    The id (a ULID) is the idempotency key every channel passes on (``webhook-id``);
    ``UNIQUE(dedupe_key, recipient_key, channel)`` makes a doubled dispatcher cost work,
    never a second message.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "recipient_key", "channel"),
        Index("ix_deliveries_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_deliveries_event_created", "event_id", "created_at"),
        Index("ix_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    #: What the message is of: ``reminder:<id>``, ``event:<id>:<type>:<sequence>``, ``ping:<ulid>``.
    dedupe_key: Mapped[str] = mapped_column(String(120))
    #: ``endpoint:<id>`` or ``registration:<id>``.
    recipient_key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    #: ``reminder.due``, ``event.published``, ``event.updated``, ``event.cancelled`` or ``ping``.
    type: Mapped[str] = mapped_column(String(32))
    reminder_id: Mapped[int | None] = mapped_column(ForeignKey("reminders.id", ondelete="SET NULL"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"), index=True)
    #: What is sent (a retry or a replay sends the same body).
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Not sent once this moment has passed (a reminder's occurrence start): ``expired`` instead.
    not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Who holds the claim (a token per claim) and until when; an expired lease is taken back.
    leased_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)
