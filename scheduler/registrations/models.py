"""Registration model."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
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
    """How a participant wants to be reminded (text messages only: nothing sends e-mail, so no
    e-mail address is collected)."""

    SMS = "sms"


class Registration(db.Model):
    """One person's registration for one event (one per event and phone number).

    Personal data (``name``, ``phone``, ``phone_hash``) is kept until the participant erases it or
    ``REGISTRATION_RETENTION_DAYS`` after the event ends; then the row stays, anonymized, so that
    counts and outcomes stay right (``anonymized_at`` set, the three columns empty).
    """

    __tablename__ = "registrations"
    __table_args__ = (
        UniqueConstraint("event_id", "phone"),
        Index("ix_registrations_event_status", "event_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    #: ``None`` once anonymized.
    name: Mapped[str | None] = mapped_column(String(100))
    #: E.164, normalised with ``phonenumbers``; ``None`` once anonymized.
    phone: Mapped[str | None] = mapped_column(String(20))
    #: :func:`scheduler.util.phone.phone_key` of the number: finds a person's registrations.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
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
    #: The version of the privacy notice the participant agreed to, and when (``None``: before notices).
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consented_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the number was proved by a code sent to it (``None``: not verified).
    phone_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the personal data was removed (retention, or erasure on request).
    anonymized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: This registration's own calendar link: its token is derived from the id and this version
    #: (so it can be shown again); only its SHA-256 is stored. ``None``: revoked.
    calendar_version: Mapped[int] = mapped_column(Integer, default=1)
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    event: Mapped[Event] = relationship()
