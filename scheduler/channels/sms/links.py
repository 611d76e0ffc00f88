"""The short link in every text: ``/m/<code>``, where a person manages or stops their reminders.

The code is the registration's id and an HMAC of it under the secret key (nothing is
stored, nothing can be guessed), short enough for a text: ``/m/1z-k3JX9qLw``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app

from scheduler.util.urls import absolute_url

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _ALPHABET[rest] + digits
        if not number:
            return digits


def _signature(registration_id: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"sms-manage:{registration_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode()  # 72 bits


def manage_code(registration_id: int) -> str:
    """The code of a registration's reminder page."""
    return f"{_base36(registration_id)}-{_signature(registration_id)}"


def manage_url(registration_id: int) -> str:
    """The absolute short link to a registration's reminder page."""
    return absolute_url("pages.manage_reminders", code=manage_code(registration_id))


def registration_id_for(code: str) -> int | None:
    """The registration a code belongs to, or ``None`` for a wrong or forged code."""
    number, _, signature = code.partition("-")
    if not number or len(number) > 12 or not signature:
        return None
    try:
        registration_id = int(number, 36)
    except ValueError:
        return None
    return registration_id if hmac.compare_digest(signature, _signature(registration_id)) else None
