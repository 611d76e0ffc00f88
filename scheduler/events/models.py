"""Event and outcome models."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


class Status(StrEnum):
    """Lifecycle: draft → published → completed | cancelled (a draft may be cancelled too)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class Event(db.Model):
    """One event (or one recurring series) of the year's plan."""

    __tablename__ = "events"
    __table_args__ = (
        # Listing by kind/org/status in time order, and the month filter, probe these.
        Index("ix_events_kind_starts", "kind", "starts_at", "id"),
        Index("ix_events_org_starts", "org_id", "starts_at", "id"),
        Index("ix_events_status_starts", "status", "starts_at", "id"),
        Index("ix_events_starts", "starts_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: iCalendar UID: stable for the life of the event; an imported event keeps its source's UID.
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    venue: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    #: Start and end of the (first) occurrence, in UTC; ``timezone`` says how to show them.
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: End of the last occurrence (``ends_at`` unless recurring): list queries use it.
    last_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    #: Seconds from the start to ``last_ends_at``; its maximum bounds the date-range scan.
    span_seconds: Mapped[int] = mapped_column(Integer, index=True)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    #: RFC 5545 recurrence rule without the ``RRULE:`` prefix; ``None`` for a single event.
    rrule: Mapped[str | None] = mapped_column(String(500))
    #: Cancelled occurrences of a series: their UTC starts, ISO 8601 (iCalendar EXDATE).
    exdates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default=Status.DRAFT.value)
    capacity: Mapped[int | None] = mapped_column(Integer)
    #: Kind-specific fields, validated by the kind's model in :mod:`scheduler.events.kinds`.
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: Reminder offsets (ISO 8601 durations); ``None`` means the kind's default plan.
    reminder_offsets: Mapped[list[str] | None] = mapped_column(JSONType)
    #: iCalendar SEQUENCE: raised when time, place, recurrence or status change.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Where an imported event came from (file name or URL); ``None`` when created here.
    import_source: Mapped[str | None] = mapped_column(String(500))
    #: A moved occurrence of an imported series (its RECURRENCE-ID), kept as a one-off event:
    #: the series it belongs to (which leaves that occurrence out), and the start it had there.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), index=True)
    recurrence_id: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, index=True)

    org: Mapped[Organization] = relationship(lazy="joined")
    outcome: Mapped[EventOutcome | None] = relationship(back_populates="event", lazy="selectin", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.kind} {self.title!r}>"


class EventOutcome(db.Model):
    """What an event achieved, recorded by its organizer after it took place."""

    __tablename__ = "event_outcomes"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    attendance: Mapped[int | None] = mapped_column(Integer)
    achievements_presented: Mapped[int | None] = mapped_column(Integer)
    #: Achievements matched with an enterprise (对接成功).
    achievements_matched: Mapped[int | None] = mapped_column(Integer)
    #: Achievements put into production (落地转化).
    achievements_commercialized: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    event: Mapped[Event] = relationship(back_populates="outcome")


class FeedRemoval(db.Model):
    """An event that left the feeds of an organization and kind (deleted, or moved away).

    Feeds take their Last-Modified from these too, so a subscriber learns of the removal.
    """

    __tablename__ = "feed_removals"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(255))
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    removed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, index=True)
