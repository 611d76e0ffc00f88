"""Driving the server-rendered pages with Flask's test client: CSRF tokens and signing in."""
from __future__ import annotations

import re

#: The password :func:`tests.factories.create_user` gives every user.
PASSWORD = "pw-" + "x" * 10


def csrf_token(page) -> str:
    """The CSRF token of the (first) form on ``page``, a test client response."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD, next_: str = ""):
    """Post the sign-in form (with its CSRF token); the response (302 when signed in)."""
    token = csrf_token(client.get("/login"))
    return client.post("/login" + next_, data={"email": email, "password": password, "csrf_token": token})
