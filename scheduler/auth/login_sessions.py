"""Sign-in sessions kept on the server (flush, never commit).

The session cookie carries a random token; its SHA-256 is a :class:`LoginSession` row. Flask-Login
loads the user only while that row is live (not ended, not past ``SESSION_HOURS``, the user
active), so signing out ends the session everywhere the cookie was copied to.
"""
from __future__ import annotations

import datetime as dt

from flask import current_app, has_request_context, request, session
from sqlalchemy import select, update

from scheduler.auth.models import LoginSession, User
from scheduler.extensions import db
from scheduler.util.ids import hash_secret, new_secret
from scheduler.util.time import now

#: Where the token sits in the (signed) session cookie.
SESSION_KEY = "sid"


def start(user: User) -> str:
    """A new session for ``user``; its token goes in the cookie (:data:`SESSION_KEY`). A session the
    cookie held before (signing in again, or as someone else) ends: a copy of the old cookie dies."""
    end()
    token = new_secret("ses_", 32)
    hours = float(current_app.config.get("SESSION_HOURS", 12))
    db.session.add(LoginSession(
        user_id=user.id, token_hash=hash_secret(token), created_at=now(), expires_at=now() + dt.timedelta(hours=hours),
        ip=request.remote_addr if has_request_context() else None,
    ))
    db.session.flush()
    session[SESSION_KEY] = token
    return token


def live_user(user_id: str) -> User | None:
    """The user the request's session cookie stands for, while its session is live."""
    token = session.get(SESSION_KEY)
    if not token or not isinstance(token, str) or not user_id.isdigit():
        return None
    row = db.session.scalar(select(LoginSession).where(LoginSession.token_hash == hash_secret(token)))
    if row is None or row.user_id != int(user_id) or row.ended_at is not None or now() >= row.expires_at:
        return None
    return row.user if row.user.active else None


def end() -> None:
    """End the request's session (signing out): a copy of the cookie opens nothing afterwards."""
    token = session.pop(SESSION_KEY, None)
    if token:
        row = db.session.scalar(select(LoginSession).where(LoginSession.token_hash == hash_secret(str(token))))
        if row is not None and row.ended_at is None:
            row.ended_at = now()
            db.session.flush()


def end_all(user: User) -> int:
    """End every session of ``user`` still open (a password reset, wherever they signed in); return
    how many were open."""
    result = db.session.execute(
        update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=now()).execution_options(synchronize_session="fetch")
    )
    db.session.flush()
    return int(result.rowcount or 0)
