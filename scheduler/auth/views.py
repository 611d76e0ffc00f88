"""Signing in and out of the organizer pages (a session cookie; the API uses bearer tokens)."""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import TooManyRequests
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from scheduler.auth import login_sessions
from scheduler.auth.operations import get_user_by_email, hash_password
from scheduler.extensions import db, limiter
from scheduler.pages.errors import reshown_on_csrf_failure

bp = Blueprint("auth", __name__)

TOO_MANY_ATTEMPTS = lazy_gettext("Too many sign-in attempts: please wait a few minutes and try again.")
WRONG_CREDENTIALS = lazy_gettext("Wrong e-mail address or password.")


class LoginForm(FlaskForm):
    """E-mail address and password."""

    email = StringField(lazy_gettext("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when the address is unknown, so both cases take the same time."""
    return hash_password("no such user")


def _login_limit() -> str:
    return current_app.config.get("RATELIMIT_LOGIN", "5 per minute;30 per hour")


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (never another host), else ``None``.

    Refused: anything not starting with one ``/`` (``//evil.example``, ``https://…``, ``javascript:``),
    backslashes (``/\\evil.example``, which browsers read as ``//``), and any control character or
    whitespace (a CR/LF would split the ``Location`` header; browsers drop tabs and newlines, so
    ``/\\t/evil.example`` would become ``//evil.example``).
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def _after_login() -> str:
    """Where an organizer lands after signing in: the year's dashboard."""
    return url_for("pages.organizer_dashboard")


@bp.route("/login", methods=["GET", "POST"])
@reshown_on_csrf_failure  # a sign-in form left open over an hour comes back with the address typed
@limiter.limit(_login_limit, methods=["POST"], error_message=lambda: str(TOO_MANY_ATTEMPTS))
def login() -> str | Response:
    """The sign-in form; after signing in, back to the page asked for (on this site only)."""
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = get_user_by_email(form.email.data or "")
        matches = check_password_hash(user.password_hash if user else _dummy_hash(), form.password.data or "")
        if user is not None and matches and user.active:
            login_sessions.start(user)
            login_user(user)
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or _after_login())
        error = str(WRONG_CREDENTIALS)
    return render_template("login.html", form=form, error=error)


@bp.post("/logout")
def logout() -> Response:
    """Sign out (a POST with the CSRF token, checked app-wide): the session ends on the server too."""
    login_sessions.end()
    logout_user()
    db.session.commit()
    return redirect(url_for("auth.login"))


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> tuple[str, int]:
    return render_template("login.html", form=LoginForm(), error=exc.description or str(TOO_MANY_ATTEMPTS)), 429
