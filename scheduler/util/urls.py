"""Absolute links, built on ``BASE_URL`` so they are right outside a request too."""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    """Return ``BASE_URL`` joined with the path of ``endpoint``."""
    return current_app.config["BASE_URL"] + url_for(endpoint, _external=False, **values)
