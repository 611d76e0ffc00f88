"""Audit log model."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


class AuditEntry(db.Model):
    """One recorded action: who (the user, and their e-mail address as it was), when, what, on
    what, and from which address. Never holds a full phone number (masked, or a count)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action_at", "action", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    #: The actor as it was at the time: a user's e-mail address, ``participant`` or ``system``.
    actor: Mapped[str] = mapped_column(String(254))
    #: What was done, e.g. ``registrations.read``, ``registrations.export``, ``registration.erase``.
    action: Mapped[str] = mapped_column(String(64))
    #: What it was done to, e.g. ``event:12``, ``endpoint:3``, ``user:7``.
    subject: Mapped[str] = mapped_column(String(200), default="")
    #: The organization concerned, if any.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"))
    #: Details (counts, changed fields, masked numbers).
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: The client's address (``request.remote_addr``; behind a proxy, what the proxy fix gives).
    ip: Mapped[str | None] = mapped_column(String(45))
