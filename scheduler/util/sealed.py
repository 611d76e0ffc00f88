"""Secrets kept sealed in the database: a webhook's signing secret and a robot's are needed in
clear to sign, so they cannot be hashed; they are encrypted (Fernet: AES-128-CBC with
HMAC-SHA256) with a key kept outside the database.

The keys are ``SECRETS_KEYS`` (comma-separated Fernet keys: the first seals, all open, so a
new key can be put first and the old one kept until everything is sealed again), or else a key
derived from ``SECRET_KEY``. Sealed values start with :data:`PREFIX`; a value without it (stored
before sealing existed) is read as it is and sealed the next time it is written.
"""
from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

PREFIX = "sealed:v1:"


class SealedSecretUnreadable(RuntimeError):
    """A sealed value none of the keys opens (``SECRETS_KEYS`` or ``SECRET_KEY`` changed)."""


@lru_cache(maxsize=4)
def derived_key(secret_key: str) -> str:
    """The Fernet key derived from ``SECRET_KEY`` (used when ``SECRETS_KEYS`` is not set)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"scheduler sealed secrets v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8"))).decode("ascii")


def _keys() -> tuple[str, ...]:
    # Called for every secret read or written: the derivation is cached, not repeated.
    config = current_app.config
    configured = tuple(key.strip() for key in config.get("SECRETS_KEYS") or () if key.strip())
    return configured or (derived_key(config["SECRET_KEY"]),)


@lru_cache(maxsize=8)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def seal(text: str) -> str:
    """``text`` encrypted with the first key, as stored."""
    return PREFIX + _box(_keys()).encrypt(text.encode("utf-8")).decode("ascii")


@lru_cache(maxsize=65536)
def _open(token: str, keys: tuple[str, ...]) -> str:
    # Cached: senders read the same endpoints' secrets for every batch they send.
    try:
        return _box(keys).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SealedSecretUnreadable("a sealed secret cannot be opened with SECRETS_KEYS / SECRET_KEY") from None


def unseal(stored: str) -> str:
    """The clear text of a stored value (a value stored before sealing is returned as it is)."""
    return _open(stored[len(PREFIX):], _keys()) if stored.startswith(PREFIX) else stored


class SealedString(TypeDecorator[str]):
    """A string column whose values are sealed on the way in and opened on the way out."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or value == "":
            return value
        return seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or value == "":
            return value
        return unseal(value)
