"""Signing out ends the session on the server: a copied cookie opens nothing afterwards."""
from __future__ import annotations

import pytest
from flask import g
from sqlalchemy import select

from scheduler.auth.models import LoginSession
from scheduler.extensions import db
from tests.factories import create_org, create_user
from tests.pages import csrf_token, fresh_token, sign_in, signed_in


@pytest.fixture
def user(ctx):
    return create_user("editor", create_org("wyu"))


def next_request() -> None:
    """Forget what Flask-Login cached in ``g``: the ``ctx`` fixture's one application context
    would otherwise carry the signed-in user from one request to the next."""
    g.pop("_login_user", None)


def cookie(client) -> str:
    return client.get_cookie("session").value


def replay(app, value: str):
    """A fresh browser that carries a copy of someone's session cookie."""
    next_request()
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief.get("/organizer")


def test_a_copied_cookie_stops_working_after_signing_out(app, client, user):
    assert sign_in(client, user.email).status_code == 302
    saved = cookie(client)
    assert replay(app, saved).status_code == 200  # the copy works while the session lives
    fresh_token()
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/organizer"))})
    answer = replay(app, saved)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    row = db.session.scalars(select(LoginSession)).one()
    assert row.ended_at is not None and row.ip == "127.0.0.1"
    assert "ses_" not in row.token_hash  # only the hash is kept


def test_a_session_ends_after_session_hours(app, client, user, clock):
    sign_in(client, user.email)
    assert client.get("/organizer").status_code == 200
    clock.advance(hours=app.config["SESSION_HOURS"] + 1)
    next_request()
    assert client.get("/organizer").status_code == 302


def test_a_deactivated_users_session_ends(client, user):
    sign_in(client, user.email)
    user.active = False
    db.session.commit()
    next_request()
    assert client.get("/organizer").status_code == 302
    assert sign_in(client, user.email).status_code == 200  # and signing in again is refused


def test_a_forged_user_id_in_the_cookie_opens_nothing(app, client, user):
    other = create_user(None, admin=True)
    sign_in(client, user.email)
    with client.session_transaction() as session:
        session["_user_id"] = str(other.id)  # as if the signing key leaked: the session row says whose it is
    next_request()
    assert client.get("/organizer/endpoints").status_code == 302


def test_a_copied_administrators_cookie_opens_no_page_after_signing_out(app, client):
    admin = create_user(None, admin=True)
    signed_in(client, admin)
    saved = cookie(client)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/organizer"))})
    thief = app.test_client()
    thief.set_cookie("session", saved)
    for path in ("/organizer", "/organizer/audit", "/organizer/endpoints", "/organizer/deliveries", "/organizer/erasure"):
        next_request()
        answer = thief.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path


def test_signing_in_again_ends_the_earlier_session(app, client, user):
    sign_in(client, user.email)
    before = cookie(client)
    sign_in(client, user.email)
    assert replay(app, before).status_code == 302  # a copy taken before the second sign-in
    assert replay(app, cookie(client)).status_code == 200
    assert [row.ended_at is not None for row in db.session.scalars(select(LoginSession).order_by(LoginSession.id))] == [True, False]


def test_signing_out_on_one_device_keeps_the_other(app, client, user):
    other = app.test_client()
    sign_in(client, user.email)
    sign_in(other, user.email)
    fresh_token()
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/organizer"))})
    next_request()
    assert client.get("/organizer").status_code == 302
    next_request()
    assert other.get("/organizer").status_code == 200


def test_session_hours_is_a_setting(app, client, user, clock, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_HOURS", 1)
    sign_in(client, user.email)
    clock.advance(minutes=59)
    next_request()
    assert client.get("/organizer").status_code == 200
    clock.advance(minutes=1)
    next_request()
    assert client.get("/organizer").status_code == 302


def test_a_made_up_session_token_opens_nothing(app, client, user):
    sign_in(client, user.email)
    with client.session_transaction() as session:
        session["sid"] = "ses_" + "A" * 43
    next_request()
    assert client.get("/organizer").status_code == 302
    with client.session_transaction() as session:
        session.pop("sid")
    next_request()
    assert client.get("/organizer").status_code == 302  # Flask-Login's own keys alone are not enough
