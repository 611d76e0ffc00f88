"""Proving a phone number with a 6-digit code sent to it by text (flush, never commit).

The way Chinese sites do it: a code valid :data:`CODE_TTL`, :data:`MAX_TRIES` wrong tries, at most
:data:`PER_NUMBER` codes per number (counted in the database, so every process agrees) and the
``RATELIMIT_VERIFICATION`` limit per client address (in the routes). Neither the number nor the
code is stored: the number's keyed hash and an HMAC of the code. A right code gives a token that
stands for "this browser or client proved the number" for :data:`SESSION_TTL`.

``REGISTRATION_VERIFY_PHONE`` is ``sms`` (a code is needed to register, and a registration proves
its number) or ``off`` (registering needs no code; the number-wide pages still need one).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from flask import current_app
from sqlalchemy import func, select

from scheduler.api.errors import Conflict, Invalid, NotFound, TooManyRequests
from scheduler.channels.sms.base import SmsMessage
from scheduler.channels.sms.templates import render
from scheduler.extensions import db
from scheduler.privacy.models import PhoneVerification
from scheduler.util.ids import hash_secret, new_secret, new_ulid
from scheduler.util.phone import InvalidPhone, mask_phone, normalize_phone, phone_key
from scheduler.util.time import now

log = logging.getLogger(__name__)

CODE_TTL = dt.timedelta(minutes=10)
MAX_TRIES = 5
SESSION_TTL = dt.timedelta(minutes=30)
#: Codes one number may be sent: (how many, within how long).
PER_NUMBER = ((1, dt.timedelta(seconds=60)), (5, dt.timedelta(hours=1)), (10, dt.timedelta(days=1)))
SESSION_PREFIX = "pv_"


def required_for_registration() -> bool:
    """Whether registering needs a code (``REGISTRATION_VERIFY_PHONE=sms``)."""
    return str(current_app.config.get("REGISTRATION_VERIFY_PHONE", "sms")).lower() == "sms"


def parse_phone(raw: str, field: str = "phone") -> str:
    """``raw`` as E.164, or 422 on ``field``."""
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise Invalid(fields={field: f"{exc.args[0].capitalize()}: give a mobile number such as 13800138000."}) from None


def _code_hash(verification_id: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"phone-code:{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def request_code(phone: str) -> tuple[PhoneVerification, str]:
    """A new code for ``phone`` (E.164): the row and the code, to send after the commit.

    Raises 429 (``too_many_codes``) when the number had its :data:`PER_NUMBER` codes.
    """
    at, key = now(), phone_key(phone)
    for most, within in PER_NUMBER:
        sent = db.session.scalar(select(func.count()).where(PhoneVerification.phone_hash == key,
                                                            PhoneVerification.created_at > at - within)) or 0
        if sent >= most:
            raise TooManyRequests("Too many codes for this number: try again later.", code="too_many_codes")
    code = f"{secrets.randbelow(10**6):06d}"
    verification = PhoneVerification(id=new_ulid(), phone_hash=key, created_at=at, expires_at=at + CODE_TTL, attempts=0)
    verification.code_hash = _code_hash(verification.id, code)
    db.session.add(verification)
    db.session.flush()
    return verification, code


def send_code(verification: PhoneVerification, phone: str, code: str) -> bool:
    """Text the code (after the commit: nothing else waits on the provider). Whether it went."""
    from scheduler.channels.sms.channel import provider

    sign = current_app.config.get("SMS_SIGN_NAME") or "江门科技"
    text = render("verify", {"code": code, "minutes": str(int(CODE_TTL.total_seconds() // 60))}, sign=sign)
    try:
        outcome = provider().send([SmsMessage(verification.id, phone, "verify", text.params, text.text)])[0]
    except Exception:  # a provider's bug must not turn into a 500 for the person waiting
        log.exception("sending a verification code to %s failed", mask_phone(phone))
        return False
    if outcome.status != "sent":
        log.warning("verification code to %s not sent: %s", mask_phone(phone), outcome.reason)
    return outcome.status == "sent"


def check_code(verification_id: str, phone: str, code: str) -> PhoneVerification:
    """The verification, once ``code`` proves ``phone`` (E.164). A wrong code counts a try.

    Raises 422 on ``code`` for a wrong, expired or spent code (after :data:`MAX_TRIES` wrong tries
    the code is spent; ask for a new one), 404 for an unknown id or another number's code.
    """
    verification = db.session.get(PhoneVerification, verification_id) if 0 < len(verification_id) <= 26 else None
    if verification is None or not hmac.compare_digest(verification.phone_hash, phone_key(phone)):
        raise NotFound("No such code request for this number: ask for a code first.", code="no_code")
    if verification.attempts >= MAX_TRIES or now() >= verification.expires_at:
        raise Invalid(fields={"code": "This code has expired or had too many wrong tries: ask for a new one."}, code="code_expired")
    given = "".join(ch for ch in code if not ch.isspace())
    if not hmac.compare_digest(verification.code_hash, _code_hash(verification.id, given)):
        verification.attempts += 1
        db.session.flush()
        left = MAX_TRIES - verification.attempts
        tries = "1 try" if left == 1 else f"{left} tries"
        raise Invalid(fields={"code": f"Wrong code: {tries} left." if left else "Wrong code: ask for a new one."},
                      code="wrong_code")
    verification.verified_at = verification.verified_at or now()
    verification.expires_at = now()  # a code proves once
    db.session.flush()
    return verification


def open_session(verification: PhoneVerification) -> str:
    """A token standing for the proved number for :data:`SESSION_TTL` (shown once; its hash kept)."""
    if verification.verified_at is None:
        raise Conflict("The number is not proved yet.", code="not_verified")
    token = new_secret(SESSION_PREFIX, 24)
    verification.session_token_hash, verification.session_until = hash_secret(token), now() + SESSION_TTL
    db.session.flush()
    return token


def phone_hash_for_session(token: str | None) -> str | None:
    """The keyed hash of the number a live session token proved, or ``None``."""
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 100:
        return None
    row = db.session.scalar(select(PhoneVerification).where(PhoneVerification.session_token_hash == hash_secret(token)))
    if row is None or row.session_until is None or now() >= row.session_until:
        return None
    return row.phone_hash


def end_session(token: str | None) -> None:
    """Forget a session token (the person leaves the page)."""
    if token:
        row = db.session.scalar(select(PhoneVerification).where(PhoneVerification.session_token_hash == hash_secret(token)))
        if row is not None:
            row.session_token_hash, row.session_until = None, None
            db.session.flush()


def prove_for_registration(phone: str, verification_id: str | None, code: str | None) -> PhoneVerification | None:
    """The verification proving a registration's number, or ``None`` when none is needed nor given.

    With ``REGISTRATION_VERIFY_PHONE=sms`` a code is required (422 on ``code`` without one). A
    wrong code is committed before the error is raised, so that tries count although the
    request fails.
    """
    if not verification_id and not code:
        if required_for_registration():
            raise Invalid(fields={"code": "Ask for a code (it is texted to the number) and give it to register."},
                          code="code_required")
        return None
    e164 = parse_phone(phone)
    try:
        return check_code(verification_id or "", e164, code or "")
    except (Invalid, NotFound):
        db.session.commit()
        raise
