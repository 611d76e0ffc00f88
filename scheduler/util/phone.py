"""Phone numbers: parsed and normalised with Google's libphonenumber port."""
from __future__ import annotations

import hashlib
import hmac

import phonenumbers
from flask import current_app


class InvalidPhone(ValueError):
    """The text is not a usable phone number."""


def normalize_phone(raw: str, region: str = "CN") -> str:
    """Return ``raw`` as E.164 (``+8613800138000``), or raise :class:`InvalidPhone`.

    Numbers without a country code are read as mainland Chinese numbers. Only
    numbers that can receive SMS (mobile, or mobile-or-fixed where a country does
    not tell them apart) are accepted.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone("not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Return the number with its middle digits hidden: ``+86 138****8000``."""
    if e164.startswith("+86") and len(e164) == 14:
        return f"+86 {e164[3:6]}****{e164[-4:]}"
    return e164[:-6] + "****" + e164[-2:]


def phone_key(e164: str) -> str:
    """A keyed hash of a number (HMAC-SHA256 under ``PHONE_HASH_KEY``, or a key derived from the
    secret key): what is kept to recognise a number without keeping the number (an opt-out after
    its registrations are gone, a verification, a person's calendar)."""
    key = current_app.config.get("PHONE_HASH_KEY") or ""
    if not key:
        key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"phone-hash", hashlib.sha256).hexdigest()
    return hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()
