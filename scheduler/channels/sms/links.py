"""Short signed links: ``/m/<code>`` in every text, where a person manages or stops their
reminders, and ``/u/<code>`` in every robot message, where a group stops the robot's messages.

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


def _signature(purpose: str, number: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"{purpose}:{number}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode()  # 72 bits


def signed_code(purpose: str, number: int) -> str:
    """A short code naming row ``number`` for ``purpose`` that only the application can make."""
    return f"{_base36(number)}-{_signature(purpose, number)}"


def number_for(purpose: str, code: str) -> int | None:
    """The row a :func:`signed_code` names, or ``None`` for a wrong or forged code."""
    number, _, signature = code.partition("-")
    if not number or len(number) > 12 or not signature:
        return None
    try:
        value = int(number, 36)
    except ValueError:
        return None
    return value if hmac.compare_digest(signature, _signature(purpose, value)) else None


def manage_code(registration_id: int) -> str:
    """The code of a registration's reminder page."""
    return signed_code("sms-manage", registration_id)


def manage_url(registration_id: int) -> str:
    """The absolute short link to a registration's reminder page."""
    return absolute_url("pages.manage_reminders", code=manage_code(registration_id))


def registration_id_for(code: str) -> int | None:
    """The registration a code belongs to, or ``None`` for a wrong or forged code."""
    return number_for("sms-manage", code)


def unsubscribe_url(endpoint_id: int) -> str:
    """The link at the end of every robot message: the group stops the robot's messages there."""
    return absolute_url("pages.unsubscribe_endpoint", code=signed_code("endpoint-unsubscribe", endpoint_id))


def endpoint_id_for(code: str) -> int | None:
    """The endpoint an unsubscribe code belongs to, or ``None``."""
    return number_for("endpoint-unsubscribe", code)
