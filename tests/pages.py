"""Driving the server-rendered pages with Flask's test client: CSRF tokens and signing in."""
from __future__ import annotations

import re

from flask import g, has_app_context

#: The password :func:`tests.factories.create_user` gives every user.
PASSWORD = "pw-" + "x" * 10


def csrf_token(page) -> str:
    """The CSRF token of the (first) form on ``page``, a test client response."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def fresh_token() -> None:
    """Forget the CSRF token Flask-WTF keeps in ``g``: a test's requests share the ``ctx`` fixture's
    application context, where the token made for the first client's session would stay."""
    if has_app_context():
        g.pop("csrf_token", None)


def sign_in(client, email: str, password: str = PASSWORD, next_: str = ""):
    """Post the sign-in form (with its CSRF token); the response (302 when signed in)."""
    fresh_token()
    token = csrf_token(client.get("/login"))
    return client.post("/login" + next_, data={"email": email, "password": password, "csrf_token": token})


def html(response, status: int = 200) -> str:
    """The page's HTML, once its status is ``status`` (else the start of the page, to see why)."""
    assert response.status_code == status, response.get_data(as_text=True)[:3000]
    return response.get_data(as_text=True)


def signed_in(client, user):
    """``client``, signed in as ``user``."""
    assert sign_in(client, user.email).status_code == 302
    fresh_token()
    return client


def session_token(client, path: str = "/login") -> str:
    """The CSRF token of ``client``'s session, read from the form on ``path``."""
    fresh_token()
    return csrf_token(client.get(path))


def prove_number(client, phone: str) -> str:
    """Make ``client``'s browser one that proved ``phone`` with a texted code (as ``/me`` does),
    without going through a provider; returns the session token."""
    from scheduler.extensions import db
    from scheduler.privacy import verification
    from scheduler.util.phone import normalize_phone

    e164 = normalize_phone(phone)
    row, code = verification.request_code(e164)
    token = verification.open_session(verification.check_code(row.id, e164, code))
    db.session.commit()
    with client.session_transaction() as session:
        session["person"] = token
    return token
