"""``/metrics`` is for the scraper holding ``METRICS_TOKEN``: off without the setting (404), closed
to anyone else (401 with ``WWW-Authenticate: Bearer``), whatever else they hold."""
from __future__ import annotations

import pytest

from tests.factories import auth, create_user
from tests.pages import signed_in

TOKEN = "scrape-secret-1234"


@pytest.fixture
def scraping(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)


def refused(response) -> bool:
    """A 401 asking for a bearer token, with none of the gauges."""
    return (response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            and "scheduler_" not in response.get_data(as_text=True))


def test_without_the_setting_metrics_are_off(client):
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404 and "scheduler_" not in response.get_data(as_text=True)
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},  # a prefix
    {"Authorization": f"Bearer {TOKEN}x"},  # longer
    {"Authorization": f"Bearer {TOKEN.upper()}"},
    {"Authorization": TOKEN},  # no scheme
    {"Authorization": "Basic c2NyYXBlLXNlY3JldC0xMjM0"},  # the token as Basic credentials
    {"Authorization": f"Token {TOKEN}"},
    {"X-Metrics-Token": TOKEN},
])
def test_anything_but_the_token_is_refused(client, scraping, headers):
    assert refused(client.get("/metrics", headers=headers))


def test_the_token_in_the_address_is_refused(client, scraping):
    assert refused(client.get(f"/metrics?token={TOKEN}"))
    assert refused(client.get(f"/metrics?access_token={TOKEN}"))


def test_an_api_token_or_an_administrators_sign_in_is_not_the_metrics_token(app, client, ctx, scraping):
    admin = create_user(None, admin=True)
    assert refused(client.get("/metrics", headers=auth(admin)))
    signed_in(client, admin)
    assert refused(client.get("/metrics"))


def test_the_scraper_reads_the_gauges_without_a_cookie(client, scraping):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "scheduler_reminders_pending" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200  # the scheme is case-blind
