"""Personal calendar links: derived from the phone number, revocable, re-issuable."""
from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from sqlalchemy import select

from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.util.ids import hash_secret
from scheduler.util.time import now

TOKEN_PREFIX = "pc_"


def _derive(phone: str, version: int) -> str:
    """256 bits from HMAC-SHA256 under the secret key: nothing secret is stored."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"personal-calendar:{phone}:{version}".encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _row(phone: str) -> PersonalCalendar | None:
    return db.session.scalar(select(PersonalCalendar).where(PersonalCalendar.phone == phone))


def ensure_token(phone: str) -> str | None:
    """The participant's calendar token, created on first use; ``None`` if they revoked it."""
    row = _row(phone)
    if row is None:
        row = PersonalCalendar(phone=phone, version=1, issued_at=now())
        row.token_hash = hash_secret(_derive(phone, 1))
        db.session.add(row)
        db.session.flush()
    if row.token_hash is None:
        return None
    return _derive(phone, row.version)


def reissue_token(phone: str) -> str:
    """A new token; the old link stops working."""
    row = _row(phone)
    if row is None:
        token = ensure_token(phone)
        assert token is not None
        return token
    row.version += 1
    token = _derive(phone, row.version)
    row.token_hash, row.issued_at, row.revoked_at = hash_secret(token), now(), None
    db.session.flush()
    return token


def revoke_token(phone: str) -> None:
    """The link stops working until the participant asks for a new one."""
    row = _row(phone)
    if row is not None and row.token_hash is not None:
        row.token_hash, row.revoked_at = None, now()
        db.session.flush()


def phone_for_token(token: str) -> str | None:
    """The phone number behind a live token, or ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return db.session.scalar(select(PersonalCalendar.phone).where(PersonalCalendar.token_hash == hash_secret(token)))
