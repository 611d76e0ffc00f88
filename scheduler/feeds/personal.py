"""Personal calendar links: a registration's own, and a verified person's (every registration of
their number). Nothing a registrant is shown opens another registration: a registration's link
names that registration only, and a person's link is shown only to someone who proved the number.

Tokens are derived (HMAC under the secret key of what they open and a version), so a page can show
them again; only their SHA-256 is stored, for lookup. Revoking clears the hash, re-issuing raises
the version (the old link dies). A cancelled or anonymized registration's link stops working.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from sqlalchemy import select

from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.ids import hash_secret
from scheduler.util.time import now

#: A registration's calendar; a verified person's.
REGISTRATION_PREFIX = "pc_"
PERSON_PREFIX = "pp_"
ACTIVE = (RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value)


def _derive(prefix: str, subject: str, version: int) -> str:
    """256 bits from HMAC-SHA256 under the secret key: nothing secret is stored."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"personal-calendar:{subject}:{version}".encode(), hashlib.sha256).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- a registration's own calendar ------------------------------------------------------------------

def issue_for_registration(registration: Registration) -> str:
    """A new link for the registration (at registering, or after revoking); the old one dies."""
    registration.calendar_version = (registration.calendar_version or 0) + 1
    token = _derive(REGISTRATION_PREFIX, f"registration:{registration.id}", registration.calendar_version)
    registration.calendar_token_hash = hash_secret(token)
    db.session.flush()
    return token


def registration_token(registration: Registration) -> str | None:
    """The registration's live link token, or ``None`` (revoked, cancelled or anonymized)."""
    if registration.calendar_token_hash is None or registration.status not in ACTIVE:
        return None
    return _derive(REGISTRATION_PREFIX, f"registration:{registration.id}", registration.calendar_version)


def revoke_for_registration(registration: Registration) -> None:
    """The registration's link stops working (until a new one is issued)."""
    registration.calendar_token_hash = None
    db.session.flush()


def registration_for_token(token: str) -> Registration | None:
    """The active registration a link opens, or ``None``."""
    if not token.startswith(REGISTRATION_PREFIX) or len(token) > 100:
        return None
    registration = db.session.scalar(select(Registration).where(Registration.calendar_token_hash == hash_secret(token)))
    return registration if registration is not None and registration.status in ACTIVE else None


# --- a verified person's calendar ---------------------------------------------------------------------

def _person_row(phone_hash: str) -> PersonalCalendar | None:
    return db.session.scalar(select(PersonalCalendar).where(PersonalCalendar.phone_hash == phone_hash))


def _person_derive(row: PersonalCalendar) -> str:
    # the moment of issue is in it: a row purged and made again never brings an old link back
    return _derive(PERSON_PREFIX, f"{row.phone_hash}:{row.issued_at.timestamp():.6f}", row.version)


def person_token(phone_hash: str) -> str | None:
    """The person's link token (created on first use), or ``None`` if they revoked it. Only for
    someone who proved the number."""
    row = _person_row(phone_hash)
    if row is None:
        row = PersonalCalendar(phone_hash=phone_hash, version=1, issued_at=now())
        row.token_hash = hash_secret(_person_derive(row))
        db.session.add(row)
        db.session.flush()
    if row.token_hash is None:
        return None
    return _person_derive(row)


def reissue_person_token(phone_hash: str) -> str:
    """A new person link; the old one stops working."""
    row = _person_row(phone_hash)
    if row is None:
        token = person_token(phone_hash)
        assert token is not None
        return token
    row.version += 1
    row.issued_at, row.revoked_at = now(), None
    token = _person_derive(row)
    row.token_hash = hash_secret(token)
    db.session.flush()
    return token


def revoke_person_token(phone_hash: str) -> None:
    """The person's link stops working until they ask for a new one."""
    row = _person_row(phone_hash)
    if row is not None and row.token_hash is not None:
        row.token_hash, row.revoked_at = None, now()
        db.session.flush()


def phone_hash_for_token(token: str) -> str | None:
    """The number (its keyed hash) behind a live person link, or ``None``."""
    if not token.startswith(PERSON_PREFIX) or len(token) > 100:
        return None
    return db.session.scalar(select(PersonalCalendar.phone_hash).where(PersonalCalendar.token_hash == hash_secret(token)))
