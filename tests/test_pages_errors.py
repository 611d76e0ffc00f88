"""The bad day: error pages in the site's layout and language, a form left open too long, the API's
documentation under its own Content-Security-Policy, and odd ``next`` addresses after signing in."""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from html.parser import HTMLParser

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select, text

from scheduler.extensions import db
from scheduler.pages import SECURITY_HEADERS
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import Registration
from tests.factories import create_city, create_event, create_user
from tests.pages import PASSWORD, csrf_token, fresh_token, html, sign_in, signed_in


@pytest.fixture
def city(ctx):
    return create_city()


@pytest.fixture
def event(city):
    return create_event(city["xinhui"], publish=True, title="新会区少年科学营", capacity=30)


@pytest.fixture
def organizer(city):
    return create_user("editor", city["xinhui"])


def _is_layout(page: str) -> bool:
    return '<link rel="stylesheet" href="/static/app.css">' in page and "<header>" in page and "<footer>" in page


@pytest.fixture
def old_tokens(monkeypatch):
    """``with old_tokens():`` CSRF tokens made inside are dated an hour and a minute ago (a page left open)."""
    @contextmanager
    def earlier():
        with monkeypatch.context() as patch:
            patch.setattr(TimestampSigner, "get_timestamp", lambda signer: int(time.time()) - 3660)
            fresh_token()
            yield
        fresh_token()

    return earlier


# --- the error pages ----------------------------------------------------------------------------------

def test_404_is_a_chinese_page_in_the_layout_with_a_search_box_and_upcoming_events(client, event) -> None:
    response = client.get("/no/such/page")
    page = html(response, 404)
    assert _is_layout(page) and '<html lang="zh-CN">' in page
    assert "页面不存在" in page and "Not Found" not in page
    assert re.search(r'<form method="get" action="/events" role="search"', page)
    assert 'name="q" type="search"' in page
    assert f'<a href="/events/{event.id}">新会区少年科学营</a>' in page
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_404_in_english_and_the_search_box_finds_events(client, event) -> None:
    page = html(client.get("/events/999999?lang=en"), 404)
    assert '<html lang="en">' in page and "Page not found" in page and 'name="lang" value="en"' in page
    found = html(client.get("/events?q=少年科学营"))
    assert f'href="/events/{event.id}"' in found and 'value="少年科学营"' in found
    assert f'href="/events/{event.id}"' not in html(client.get("/events?q=没有这个词"))


def test_403_405_413_and_429_are_localized_pages(app, client, organizer, monkeypatch) -> None:
    signed_in(client, organizer)
    forbidden = html(client.get("/organizer/audit"), 403)
    assert _is_layout(forbidden) and "您无权打开此页面" in forbidden and "Forbidden" not in forbidden

    not_allowed = client.get("/logout?lang=en")
    assert "This page cannot be opened this way" in html(not_allowed, 405)
    assert not_allowed.headers["Allow"].split(", ").count("POST") == 1

    too_large = client.post("/login?lang=zh", data={"email": "x" * (3 * 1024 * 1024)})
    page = html(too_large, 413)
    assert "发送的内容过大" in page and "最多 2 MB" in page and _is_layout(page)

    monkeypatch.setitem(app.config, "RATELIMIT_VERIFICATION", "1 per minute")
    other = app.test_client()
    fresh_token()
    token = csrf_token(other.get("/me"))
    other.post("/me/code", data={"csrf_token": token, "phone": "not a number"})
    limited = other.post("/me/code", data={"csrf_token": token, "phone": "13800138000"})
    assert "请求过多" in html(limited, 429) and _is_layout(limited.get_data(as_text=True))


def test_the_api_keeps_its_json_errors(client) -> None:
    for response, status in ((client.get("/api/v1/no-such-thing"), 404), (client.get("/api/no-such-thing"), 404),
                             (client.delete("/api/v1/openapi.json"), 405), (client.post("/api/docs"), 405)):
        assert response.status_code == status and response.is_json, response.data[:200]
        assert set(response.get_json()["error"]) >= {"code", "message"}


@pytest.fixture
def failing_list(app, monkeypatch):
    """``/events`` fails with a secret in the exception after breaking the database transaction;
    unhandled exceptions reach the error handler as in production (not raised into the test)."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)

    def broken(*args, **kwargs):
        try:
            db.session.execute(text("SELECT no_such_column FROM no_such_table"))
        except Exception:  # noqa: BLE001 - the session is left needing a rollback (PostgreSQL: aborted)
            pass
        raise RuntimeError("secret-detail: password=hunter2")

    monkeypatch.setattr("scheduler.pages.public.list_events", broken)


def test_500_is_a_page_without_the_exception_and_reads_the_database_after_rolling_back(client, organizer, failing_list) -> None:
    signed_in(client, organizer)
    page = html(client.get("/events"), 500)
    assert _is_layout(page) and "出错了" in page and organizer.email in page  # the layout read the signed-in user
    assert "secret-detail" not in page and "hunter2" not in page and "Traceback" not in page
    assert html(client.get("/events?lang=en"), 500).count("Something went wrong") >= 1


def test_500_falls_back_to_a_minimal_page_when_the_layout_fails(app, client, organizer, failing_list, monkeypatch) -> None:
    signed_in(client, organizer)

    def no_menu():
        raise RuntimeError("the menu needs the database")

    monkeypatch.setitem(app.jinja_env.globals, "organizer_nav", no_menu)
    response = client.get("/events")
    page = html(response, 500)
    assert "出错了" in page and "<header>" not in page and "secret-detail" not in page
    assert response.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]

    monkeypatch.setattr("scheduler.pages.errors.render_template", lambda *a, **k: no_menu())
    plain = client.get("/events")
    assert plain.status_code == 500 and plain.mimetype == "text/plain" and b"secret" not in plain.data


# --- a form left open over an hour ------------------------------------------------------------------

def _registrations(event) -> int:
    return db.session.scalar(select(func.count()).select_from(Registration).where(Registration.event_id == event.id))


def test_registration_form_open_over_an_hour_comes_back_as_typed_with_a_fresh_token(client, event, old_tokens) -> None:
    with old_tokens():
        old = csrf_token(client.get(f"/events/{event.id}"))
    typed = {"csrf_token": old, "name": "陈小明", "phone": "13800138000", "channels": ["sms"], "consent": NOTICE_VERSION}
    response = client.post(f"/events/{event.id}/register", data=typed)
    page = html(response, 400)
    assert "页面打开时间过长" in page and "The CSRF token" not in page
    assert 'value="陈小明"' in page and 'value="13800138000"' in page
    assert 'name="channels" value="sms" checked' in page and f'value="{NOTICE_VERSION}" checked' in page
    assert _registrations(event) == 0
    fresh = csrf_token(response)
    assert fresh != old
    again = client.post(f"/events/{event.id}/register", data={**typed, "csrf_token": fresh})
    assert again.status_code == 303 and _registrations(event) == 1


def test_an_expired_registration_form_in_english_does_not_show_the_texted_code_again(app, client, event, old_tokens, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "REGISTRATION_VERIFY_PHONE", "sms")
    with old_tokens():
        old = csrf_token(client.get(f"/events/{event.id}?lang=en"))
    typed = {"csrf_token": old, "name": "Chen", "phone": "13800138000", "code": "246813", "verification_id": "7"}
    page = html(client.post(f"/events/{event.id}/register?lang=en", data=typed), 400)
    assert "The page was open too long" in page and 'value="Chen"' in page
    assert "246813" not in page and 'name="verification_id" value="7"' in page
    code = client.post(f"/events/{event.id}/register/code", data={**typed, "csrf_token": "not-a-token"})
    assert "246813" not in html(code, 400) and 'value="13800138000"' in code.get_data(as_text=True)


def test_sign_in_form_open_over_an_hour_keeps_the_address_but_not_the_password(client, organizer, old_tokens) -> None:
    with old_tokens():
        old = csrf_token(client.get("/login"))
    response = client.post("/login?next=/organizer/events", data={"csrf_token": old, "email": organizer.email, "password": PASSWORD})
    page = html(response, 400)
    assert "页面打开时间过长" in page and f'value="{organizer.email}"' in page and PASSWORD not in page
    fresh = csrf_token(response)
    assert fresh != old
    signed = client.post("/login?next=/organizer/events", data={"csrf_token": fresh, "email": organizer.email, "password": PASSWORD})
    assert signed.status_code == 302 and signed.headers["Location"] == "/organizer/events"


def test_other_forms_sent_with_a_bad_token_explain_and_link_back(client, organizer) -> None:
    signed_in(client, organizer)
    response = client.post("/logout?lang=en", data={"csrf_token": "forged"},
                           headers={"Referer": "http://localhost/organizer/events?year=2024"})
    page = html(response, 400)
    assert "The page was open too long" in page and 'href="/organizer/events?year=2024"' in page
    elsewhere = client.post("/logout", data={}, headers={"Referer": "https://evil.example/phish"})
    assert "evil.example" not in html(elsewhere, 400) and 'href="/events"' in elsewhere.get_data(as_text=True)


# --- /api/docs and its Content-Security-Policy ------------------------------------------------------

class _Inline(HTMLParser):
    """Inline styles and scripts, and the stylesheets linked."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "style" or (tag == "script" and "src" not in named) or "style" in named:
            self.inline.append(f"{tag} {named}")
        if any(name.startswith("on") for name in named):
            self.inline.append(f"{tag} handler {named}")
        if tag == "link" and named.get("rel") == "stylesheet":
            self.stylesheets.append(named["href"] or "")


def test_api_docs_has_nothing_inline_that_its_policy_refuses(client) -> None:
    response = client.get("/api/docs")
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self'" in policy and "unsafe-inline" not in policy and "nonce-" not in policy
    parser = _Inline()
    parser.feed(html(response))
    assert parser.inline == []
    assert parser.stylesheets == ["/static/api_docs.css"]
    with client.get("/static/api_docs.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css" and b".op{" in css.data


# --- where to go after signing in ---------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/%0d%0aSet-Cookie:%20x=1", "/organizer%0d%0aLocation:%20https://evil.example", "/%0aevil", "//evil.example",
    "///evil.example", "https://evil.example/", "http:evil.example", "/\\evil.example", "\\\\evil.example",
    "/%09/evil.example", "javascript:alert(1)", "%2F%2Fevil.example", " //evil.example", "/%00", "",
])
def test_odd_next_addresses_are_ignored(client, organizer, target) -> None:
    response = sign_in(client, organizer.email, next_=f"?next={target}")
    assert response.status_code == 302, response.data[:300]
    assert response.headers["Location"] == "/organizer"


def test_a_next_address_on_this_site_is_followed(client, organizer) -> None:
    response = sign_in(client, organizer.email, next_="?next=/organizer/events%3Fyear%3D2024")
    assert response.status_code == 302 and response.headers["Location"] == "/organizer/events?year=2024"


def test_an_expired_sign_in_form_still_counts_against_the_limit(app, client, organizer, old_tokens, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN", "2 per minute")
    with old_tokens():
        old = csrf_token(client.get("/login"))
    statuses = [client.post("/login", data={"csrf_token": old, "email": organizer.email, "password": "wrong"}).status_code
                for _ in range(4)]
    assert statuses == [400, 400, 429, 429]  # the form again twice, then the sign-in limit's page
