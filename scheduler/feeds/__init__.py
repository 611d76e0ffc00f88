"""Calendar feeds (iCalendar) and calendar import."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the feed endpoints."""
    from scheduler.feeds import versioning, views  # noqa: F401  (versioning registers its flush hook)

    app.config.setdefault("ORGANIZER_EMAIL", "noreply@example.org")
    app.register_blueprint(views.bp)
    from scheduler.feeds import import_views

    app.register_blueprint(import_views.bp)  # the organizers' calendar import page
