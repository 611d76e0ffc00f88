"""A participant's personal calendar: the events they registered for, behind a secret link."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


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
