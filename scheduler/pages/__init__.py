"""Server-rendered pages: the public ones, and the organizers' (login required)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_babel import lazy_gettext
from flask_login import current_user
from werkzeug.wrappers import Response

#: The organizers' menu: (endpoint, label, the endpoint prefixes it stands for). An entry shows
#: only once its page is registered, so each part of the organizer pages adds itself here.
ORGANIZER_NAV = (
    ("pages.organizer_dashboard", lazy_gettext("Dashboard"), ("pages.organizer_dashboard",)),
    ("pages.organizer_events", lazy_gettext("Events"), ("pages.organizer_event", "pages.organizer_registration")),
    ("organizer.import_page", lazy_gettext("Import"), ("organizer.import_page",)),
    ("pages.organizer_deliveries", lazy_gettext("Deliveries"), ("pages.organizer_deliver",)),
    ("pages.organizer_endpoints", lazy_gettext("Webhooks and robots"), ("pages.organizer_endpoint",)),
    ("pages.organizer_erasure", lazy_gettext("Erasure requests"), ("pages.organizer_erasure",)),
    ("pages.organizer_audit", lazy_gettext("Audit log"), ("pages.organizer_audit",)),
)
#: Menu entries only some users may open: endpoint → whether the user may (set by the page's module).
NAV_CHECKS: dict[str, Callable[[Any], bool]] = {}

#: Every page: scripts and styles from this site only (no inline script), no framing, no sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _anyone(user: Any) -> bool:
    return True


def organizer_nav() -> list[tuple[str, str, bool]]:
    """The menu entries whose pages exist: (endpoint, label, whether it is the current section)."""
    here = request.endpoint or ""
    return [
        (endpoint, str(label), any(here.startswith(prefix) for prefix in prefixes))
        for endpoint, label, prefixes in ORGANIZER_NAV
        if endpoint in current_app.view_functions and NAV_CHECKS.get(endpoint, _anyone)(current_user)
    ]


def _secure(response: Response) -> Response:
    if response.mimetype == "text/html":
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Register the public pages, the organizers' pages and the error pages."""
    from scheduler.pages import organizer as _organizer  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_events as _organizer_events  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_deliveries as _deliveries  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_endpoints as _endpoints  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_erasure as _erasure  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_audit as _audit  # noqa: F401  (routes on views.bp)
    from scheduler.pages import organizer_registrations as _registrations  # noqa: F401  (routes on views.bp)
    from scheduler.pages import public as _public  # noqa: F401  (routes on views.bp)
    from scheduler.pages import person as _person  # noqa: F401  (routes on views.bp)
    from scheduler.pages import reminders as _reminders  # noqa: F401  (routes on views.bp)
    from scheduler.pages import errors, views

    app.register_blueprint(views.bp)
    errors.init_app(app)
    app.jinja_env.globals["organizer_nav"] = organizer_nav
    app.after_request(_secure)
