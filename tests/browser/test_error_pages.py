"""The bad day in a real browser: /api/docs styled under the site's Content-Security-Policy (nothing
refused), and the 404 page's search box leading to the events."""
from __future__ import annotations

import pytest

from tests.browser.conftest import LiveServer

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skipped by conftest, which says why
    Page = expect = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.browser


def _refusals(page: Page) -> list[str]:
    """The console's reports of what the Content-Security-Policy refused on ``page``."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    return refused


def test_api_docs_is_styled_and_the_policy_refuses_nothing(page: Page, live_server: LiveServer) -> None:
    refused = _refusals(page)
    page.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => { (window.__refused = window.__refused || []).push(e.violatedDirective + ' ' + e.blockedURI); });""")
    response = page.goto(live_server("/api/docs?lang=en"))
    assert response is not None and response.status == 200
    operation = page.locator("section.op").first
    expect(operation).to_be_visible()
    assert operation.evaluate("e => getComputedStyle(e).borderTopWidth") == "1px"
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "960px"  # 60rem
    assert page.evaluate("window.__refused || []") == [] and refused == []


def test_404_page_searches_the_events(page: Page, live_server: LiveServer) -> None:
    response = page.goto(live_server("/events/no-such-event"))
    assert response is not None and response.status == 404
    expect(page.locator("header nav").first).to_be_visible()
    tour = live_server.ids["study_tour"]
    expect(page.locator(f'main a[href="/events/{tour}"]')).to_be_visible()  # an upcoming event suggested
    page.locator('form[role=search] input[name="q"]').fill("五邑大学")
    page.locator('form[role=search] button[type="submit"]').click()
    page.wait_for_url("**/events?q=*")
    expect(page.locator(f'main h3 a[href="/events/{tour}"]')).to_be_visible()
    expect(page.locator(f'main h3 a[href="/events/{live_server.ids["carnival"]}"]')).to_have_count(0)
