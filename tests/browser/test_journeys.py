"""The issue's journeys, end to end in a real browser, each person in their own browser context:

* an organizer creates a study tour with 2 seats and publishes it; three participants register
  and the third is waitlisted; the first cancels and the third is promoted (on their own page and
  on the organizer's list); the third subscribes to their calendar link and the feed has the tour;
* the outcome of a past matchmaking fair is recorded: the dashboard's progress bar and the
  matchmaking feed's description change;
* switching to English (and staying there);
* the main flows with JavaScript turned off: browse, register, cancel, create and publish.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import icalendar
import pytest

from tests.browser.conftest import DESKTOP, TIMEOUT_MS, LiveServer
from tests.browser.helpers import screenshot, sign_in

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect
except ImportError:  # skipped by conftest, which says why
    Browser = BrowserContext = Page = expect = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.browser


@pytest.fixture
def people(browser: Browser) -> Iterator[callable]:
    """``people(js=True)`` opens one more person's browser (own cookies), desktop-sized, in Chinese."""
    contexts: list[BrowserContext] = []

    def open_one(js: bool = True) -> Page:
        context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=DESKTOP, java_script_enabled=js)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_one
    for context in contexts:
        context.close()


def register(page: Page, live: LiveServer, event_id: int, name: str, phone: str) -> None:
    """Register on the event's page; the browser lands on its confirmation page."""
    page.goto(live(f"/events/{event_id}"))
    form = page.locator("form:has(input[name=phone])")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=phone]").fill(phone)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/registrations/\d+/confirmation$"))


def cancel_own_registration(page: Page) -> None:
    """On the confirmation page: the cancel button (the code travels in the form's body)."""
    with page.expect_navigation():
        page.locator("form[action$='/registrations/cancel'] button[type=submit]").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile("已取消|cancelled"))


def fetch_calendar(page: Page, url: str) -> icalendar.Calendar:
    """GET a feed (a webcal:// link is fetched over http) and parse it."""
    response = page.request.get(re.sub(r"^webcal://", "http://", url))
    assert response.status == 200, url
    assert response.headers["content-type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(response.body())


def test_participants_fill_a_tour_and_the_waitlist_moves_up(people, live_server: LiveServer) -> None:
    event_id = live_server.ids["study_tour"]  # 2 seats
    first, second, third = people(), people(), people()
    register(first, live_server, event_id, "甲", "13800138501")
    register(second, live_server, event_id, "乙", "13800138502")
    register(third, live_server, event_id, "丙", "13800138503")
    expect(first.get_by_role("heading", level=1)).to_have_text(re.compile("已报名|You are registered"))
    expect(third.get_by_role("heading", level=1)).to_have_text(re.compile("候补|waitlist"))
    expect(third.get_by_role("status")).to_contain_text("1")

    cancel_own_registration(first)
    third.reload()
    expect(third.get_by_role("heading", level=1)).to_have_text(re.compile("已报名|You are registered"))

    webcal = third.locator("main a[href^='webcal://'][href*='/calendars/personal/']").get_attribute("href")
    assert webcal
    feed = fetch_calendar(third, webcal)
    titles = [str(component["SUMMARY"]) for component in feed.walk("VEVENT")]
    assert titles == ["走进五邑大学智能制造实验室"]


def test_switching_to_english_stays_english(people, live_server: LiveServer) -> None:
    page = people()
    page.goto(live_server("/"))
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^zh"))
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("navigation", name="Site").get_by_role("link", name="Month calendar")).to_be_visible()
    page.goto(live_server(f"/events/{live_server.ids['carnival']}"))  # no ?lang=: the cookie remembers
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("form:has(input[name=phone]) button[type=submit]")).to_have_text(re.compile("[A-Za-z]"))
    screenshot(page, "event-en")


def test_browse_register_and_cancel_without_javascript(people, live_server: LiveServer) -> None:
    page = people(js=False)
    page.goto(live_server("/"))
    with page.expect_navigation():
        page.locator(f"main h3 a[href='/events/{live_server.ids['carnival']}']").click()
    form = page.locator("form:has(input[name=phone])")
    form.locator("input[name=name]").fill("无脚本")
    form.locator("input[name=phone]").fill("13800138601")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("已报名"))
    cancel_own_registration(page)
    expect(page).to_have_url(live_server(f"/events/{live_server.ids['carnival']}"))


def test_signing_in_is_rate_limited_with_a_clear_message(people, live_server: LiveServer) -> None:
    from scheduler.extensions import limiter

    page = people()
    try:
        for _ in range(6):
            sign_in(page, live_server.url, "nobody@example.org", "wrong password")
        expect(page.get_by_role("alert")).to_contain_text(re.compile("登录尝试过多|Too many"))
    finally:
        with live_server.app.app_context():
            limiter.reset()  # every browser here is 127.0.0.1: let the other tests sign in


#: Everything a keyboard user must be able to reach with Tab.
CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea"


def reached_by_tab(page: Page) -> tuple[int, int, list[str]]:
    """Tab through the page once: (controls, controls reached, those never reached)."""
    total = page.locator(CONTROLS).count()
    page.evaluate("""selector => document.querySelectorAll(selector).forEach((e, i) => e.dataset.tabCheck = i)""", CONTROLS)
    reached: set[str] = set()
    page.locator("body").focus()
    for _ in range(total + 5):
        page.keyboard.press("Tab")
        index = page.evaluate("() => document.activeElement && document.activeElement.dataset.tabCheck")
        if index is not None:
            reached.add(index)
    missed = page.evaluate(
        """([selector, reached]) => [...document.querySelectorAll(selector)]
             .filter(e => !reached.includes(e.dataset.tabCheck)).map(e => e.outerHTML.slice(0, 80))""",
        [CONTROLS, sorted(reached)],
    )
    return total, len(reached), missed


@pytest.mark.parametrize("path", ["/", "/login", "/events/{study_tour}", "/registrations/cancel", "/calendars"])
def test_every_control_is_reachable_by_keyboard(people, live_server: LiveServer, path: str) -> None:
    page = people()
    page.goto(live_server(path.format(**live_server.ids)))
    total, reached, missed = reached_by_tab(page)
    assert total > 0 and missed == [], missed
