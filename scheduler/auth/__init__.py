"""Authentication: users, roles per organization, API tokens, and sign-in sessions."""
from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext

from scheduler.extensions import login


def init_app(app: Flask) -> None:
    """Set up Flask-Login and the sign-in pages for the organizer pages."""
    from scheduler.auth import login_sessions, views
    from scheduler.auth.models import User
    from scheduler.auth.sessions import SessionInterface

    app.session_interface = SessionInterface()
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message = lazy_gettext("Please sign in first.")
    app.register_blueprint(views.bp)

    @login.user_loader
    def _load_user(user_id: str) -> User | None:
        return login_sessions.live_user(user_id)
