"""Server-rendered public pages."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the public pages and the organizers' dashboard."""
    from scheduler.pages import organizer as _organizer  # noqa: F401  (routes on views.bp)
    from scheduler.pages import public as _public  # noqa: F401  (routes on views.bp)
    from scheduler.pages import reminders as _reminders  # noqa: F401  (routes on views.bp)
    from scheduler.pages import views

    app.register_blueprint(views.bp)
