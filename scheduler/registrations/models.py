"""Registration model."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


class RegistrationStatus(StrEnum):
    """A registration holds a seat, waits for one, or was cancelled."""

    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    """How a participant wants to be reminded."""

    SMS = "sms"
    EMAIL = "email"


class Registration(db.Model):
    """One person's registration for one event (one per event and phone number)."""

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("event_id", "phone"),
        Index("ix_registrations_event_status", "event_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    #: E.164, normalised with ``phonenumbers``.
    phone: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the participant's private token (the token itself is shown once).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    #: When the registration took a seat (at once, or on promotion from the waitlist).
    seated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When a seat freed on the waitlist went to it (``None``: seated at once, or not seated).
    promoted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    event: Mapped[Event] = relationship()
