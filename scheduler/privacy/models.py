"""Codes that prove a phone number, and what proving it opens."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


class PhoneVerification(db.Model):
    """A 6-digit code sent by text to a number, valid :data:`~scheduler.privacy.verification.CODE_TTL`
    for :data:`~scheduler.privacy.verification.MAX_TRIES` tries. Neither the number nor the code is
    stored: the number's keyed hash and an HMAC of the code. Once the code is given, the row
    holds the hash of a short-lived token that stands for "this browser or client proved the number"
    (``session_until``). Purged by retention once expired."""

    __tablename__ = "phone_verifications"

    #: A ULID, the public id of the request.
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    #: :func:`scheduler.util.phone.phone_key` of the number.
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: HMAC-SHA256 of the code under the secret key (with the id, so equal codes differ).
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Wrong codes given so far.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: SHA-256 of the token given when the code was right, and until when it opens the number's data.
    session_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
