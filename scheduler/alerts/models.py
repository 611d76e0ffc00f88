"""Alert model."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


class Alert(db.Model):
    """Something an organization's managers are told about (a disabled webhook endpoint, ...)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_org_created", "org_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    #: What happened, e.g. ``webhook.disabled``.
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    #: What it is about, e.g. ``endpoint:12``.
    subject: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
