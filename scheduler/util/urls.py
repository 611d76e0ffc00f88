"""Absolute links, built on ``BASE_URL`` so they are right outside a request too."""
from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    """Return ``BASE_URL`` joined with the path of ``endpoint`` (in a request or, for jobs, outside one)."""
    if has_request_context():
        path = url_for(endpoint, _external=False, **values)
    else:
        path = current_app.url_map.bind("", script_name="/").build(endpoint, values)
    return current_app.config["BASE_URL"] + path
