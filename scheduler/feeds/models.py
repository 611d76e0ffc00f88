"""Calendars: a participant's personal calendar, the feeds' version, and background imports."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


class PersonalCalendar(db.Model):
    """A verified person's calendar of everything they registered for: one per number, known by
    the number's keyed hash (never the number). Only someone who proved the number (a code sent
    to it) is shown the link. The token is derived (HMAC of the hash and ``version`` under the
    secret key), so it can be shown again; only its SHA-256 is stored, for lookup. Revoking
    clears the hash; re-issuing raises ``version`` (the old link dies). A registration's own
    calendar lives on the registration (``calendar_token_hash``).
    """

    __tablename__ = "personal_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: :func:`scheduler.util.phone.phone_key` of the number.
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class FeedVersion(db.Model):
    """A counter raised in the same transaction as every change that feeds show.

    Feeds cache their bytes per version: one indexed read tells whether anything changed,
    on any machine, whatever the clocks say (see :mod:`scheduler.feeds.versioning`).
    """

    __tablename__ = "feed_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class ImportStatus(StrEnum):
    """Where a background import stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(db.Model):
    """A calendar import run in the background (a URL, or a file too large to import while the
    browser waits): its options, its progress, and its report once done. The uploaded file is
    kept only until the import has run (a dry run's until it is imported or a day has passed)."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The URL, or the uploaded file's name.
    source: Mapped[str] = mapped_column(String(2000))
    #: The uploaded file; ``None`` for a URL, and once the file is no longer needed.
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    kind: Mapped[str] = mapped_column(String(32))
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    atomic: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED.value, index=True)
    #: ``fetching``, ``reading``, ``importing`` while it runs.
    phase: Mapped[str | None] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    #: ``{"problems": [...], "notes": [...]}``, each as :meth:`Problem.as_dict` keeps it.
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Moved on while the job runs; a running job whose heartbeat stopped was interrupted.
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
