"""What every page carries for safety: the session cookie's flags and the security headers."""
from __future__ import annotations

import pytest

from scheduler import create_app
from scheduler.pages import SECURITY_HEADERS
from tests.factories import create_city, create_user
from tests.pages import sign_in


@pytest.fixture
def organizer(ctx):
    return create_user("editor", create_city()["xinhui"])


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_session_cookie_is_http_only_and_same_site_lax(client, organizer) -> None:
    cookie = _session_cookie(sign_in(client, organizer.email))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # served over plain http here (BASE_URL http://…)


def test_session_cookie_is_secure_when_served_over_https(app) -> None:
    secure = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "RATELIMIT_STORAGE_URI")},
                         "TESTING": True, "SCHEDULER_MODE": "off", "BASE_URL": "https://events.example.org"})
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    with secure.test_client() as client:
        response = client.get("/login")
        assert "Secure" in _session_cookie(response) and "HttpOnly" in _session_cookie(response)


@pytest.mark.parametrize("path", ["/", "/login", "/calendars", "/organizer"])
def test_pages_forbid_inline_scripts_and_framing(client, path) -> None:
    response = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_the_stylesheet_is_served_by_the_app(client) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<link rel="stylesheet" href="/static/app.css">' in page
    assert "http://" not in page.split("<main>")[0].replace('xmlns="http://', "")  # nothing fetched from elsewhere
    with client.get("/static/app.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css" and b"body{" in css.data


def test_passwords_are_hashed_with_scrypt_unless_configured(tmp_path, monkeypatch) -> None:
    from scheduler.config import Config

    monkeypatch.delenv("PASSWORD_HASH_METHOD", raising=False)
    assert Config(tmp_path).PASSWORD_HASH_METHOD == "scrypt"
