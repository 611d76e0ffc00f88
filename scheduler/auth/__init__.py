"""Authentication: users, roles per organization, API tokens, and sign-in sessions."""
from __future__ import annotations

from flask import Flask

from scheduler.extensions import db, login


def init_app(app: Flask) -> None:
    """Set up Flask-Login for the organizer pages."""
    from scheduler.auth.models import User

    login.init_app(app)

    @login.user_loader
    def _load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))
