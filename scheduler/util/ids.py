"""Identifiers and secrets."""
from __future__ import annotations

import hashlib
import secrets

from ulid import ULID


def new_ulid() -> str:
    """Return a new ULID as its 26-character string (sortable by creation time)."""
    return str(ULID())


def new_secret(prefix: str = "", nbytes: int = 24) -> str:
    """Return a URL-safe random secret of ``nbytes`` random bytes behind ``prefix``."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """Return the SHA-256 hex digest stored in place of a secret token.

    Tokens carry at least 192 random bits, so a fast unsalted hash is enough:
    nothing about them can be guessed, and lookups stay a single index probe.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
