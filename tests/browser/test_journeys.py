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

import json
import re
from pathlib import Path
from collections.abc import Iterator

import icalendar
import pytest

from tests.browser.conftest import DESKTOP, TIMEOUT_MS, LiveServer
from tests.browser.helpers import fill_registration, screenshot, sign_in, texted_code

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
    fill_registration(page, name, phone)
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
    expect(page.locator("form:has(input[name=phone]) button[type=submit]").last).to_have_text(re.compile("[A-Za-z]"))


def test_browse_register_and_cancel_without_javascript(people, live_server: LiveServer) -> None:
    page = people(js=False)
    page.goto(live_server("/"))
    with page.expect_navigation():
        page.locator(f"main h3 a[href='/events/{live_server.ids['carnival']}']").click()
    fill_registration(page, "无脚本", "13800138601")
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


def organizer(people, live: LiveServer, js: bool = True) -> Page:
    """The seeded organizer, signed in, with the pages in English (driven by their labels)."""
    page = people(js)
    sign_in(page, live.url, live.organizer_email, live.organizer_password)
    page.goto(live("/organizer?lang=en"))
    return page


def create_study_tour(page: Page, live: LiveServer, title: str) -> int:
    """Through the form: a study tour of Wuyi University with 2 seats, previewed, saved, published."""
    page.goto(live("/organizer/events"))
    with page.expect_navigation():
        page.locator("a[href$='/organizer/events/new?kind=study_tour']").first.click()
    page.get_by_label("Organization").select_option("wyu")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Starts").fill("2024-07-06T09:00")
    page.get_by_label("Ends").fill("2024-07-06T12:00")
    page.get_by_label("Capacity").fill("2")
    page.get_by_label("Meeting point").fill("五邑大学南门")
    with page.expect_navigation():
        page.locator("#preview").click()
    preview = page.locator("#reminder-preview")
    expect(preview.locator("tbody tr")).not_to_have_count(0)
    expect(preview.locator("blockquote.sms")).to_contain_text(title)
    expect(preview.locator("blockquote.sms")).to_contain_text("地点：详见活动页面")  # no place given yet
    screenshot(page, "event-form-preview")
    with page.expect_navigation():
        page.locator("#save").click()
    expect(page).to_have_url(re.compile(r"/organizer/events/\d+$"))
    event_id = int(page.url.rsplit("/", 1)[1])
    with page.expect_navigation():
        page.locator("#publish").click()
    expect(page.locator("main")).to_contain_text("Published")
    return event_id


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_organizer_creates_a_tour_that_participants_fill(people, live_server: LiveServer, clock, js: bool) -> None:
    staff = organizer(people, live_server, js)
    title = "走进江门中微子实验室" + ("" if js else "(无脚本)")
    event_id = create_study_tour(staff, live_server, title)

    first, second, third = people(js), people(js), people(js)
    digits = "6" if js else "5"
    register(first, live_server, event_id, "甲", f"1380013{digits}501")
    register(second, live_server, event_id, "乙", f"1380013{digits}502")
    register(third, live_server, event_id, "丙", f"1380013{digits}503")
    expect(third.get_by_role("heading", level=1)).to_have_text(re.compile("候补"))

    staff.goto(live_server(f"/organizer/events/{event_id}/registrations"))
    expect(staff.locator("#waitlist")).to_contain_text("丙")
    clock.advance(minutes=5)  # the server reads the same injected clock
    cancel_own_registration(first)
    third.reload()
    expect(third.get_by_role("heading", level=1)).to_have_text(re.compile("已报名"))
    staff.reload()
    expect(staff.locator("#seated")).to_contain_text("丙")
    expect(staff.locator("#seated tr", has_text="丙")).to_contain_text(re.compile("[Pp]romoted"))
    expect(staff.locator("#waitlist")).to_have_count(0)
    if js:
        screenshot(staff, "registrations")

    webcal = third.locator("main a[href^='webcal://'][href*='/calendars/personal/']").get_attribute("href")
    feed = fetch_calendar(third, webcal or "")
    assert [str(component["SUMMARY"]) for component in feed.walk("VEVENT")] == [title]


def _progress(page: Page, live: LiveServer, key: str) -> str:
    page.goto(live("/organizer"))
    return page.locator(f"li.target[data-key={key}] progress").get_attribute("value") or ""


def _matchmaking_feed_description(page: Page, live: LiveServer) -> str:
    feed = fetch_calendar(page, live("/calendars/kinds/matchmaking.ics"))
    return str(feed.get("X-WR-CALDESC") or feed.get("DESCRIPTION"))


def test_recording_a_fairs_outcome_moves_the_progress_bar_and_the_feed(people, live_server: LiveServer) -> None:
    import datetime as dt

    from scheduler.events import operations as events
    from scheduler.extensions import db
    from scheduler.orgs.models import Organization

    def past_fair() -> int:
        org = db.session.scalar(db.select(Organization).where(Organization.slug == "jmkjj"))
        cst = dt.timezone(dt.timedelta(hours=8))
        fair = events.create_event(
            org=org, kind="matchmaking", title="邑科汇·新能源专场", venue="江门市科技馆",
            starts_at=dt.datetime(2024, 6, 1, 9, 0, tzinfo=cst), ends_at=dt.datetime(2024, 6, 1, 17, 0, tzinfo=cst),
            details={"sector": "new_energy"},
        )
        events.publish_event(fair)
        db.session.flush()
        return fair.id

    fair_id = live_server.run(past_fair)
    staff = organizer(people, live_server)
    before = _progress(staff, live_server, "achievements_matched")
    description = _matchmaking_feed_description(staff, live_server)
    assert "成功对接 0/30" in description, description

    staff.goto(live_server(f"/organizer/events/{fair_id}"))
    with staff.expect_navigation():
        staff.locator("#record-outcome").click()
    staff.get_by_label("Achievements presented").fill("20")
    staff.get_by_label("Achievements matched").fill("12")
    staff.get_by_label("Achievements commercialized").fill("3")
    with staff.expect_navigation():
        staff.locator("#record-outcome").click()
    expect(staff.get_by_role("status").first).to_be_visible()

    assert (before, _progress(staff, live_server, "achievements_matched")) == ("0", "12")
    description = _matchmaking_feed_description(staff, live_server)
    assert "成功对接 12/30" in description and "落地转化 3/10" in description, description


#: Everything a keyboard user must be able to reach with Tab.
CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea"


def reached_by_tab(page: Page) -> tuple[int, list[str]]:
    """Tab through the page once: (controls, those never reached). A radio group counts as reached
    when one of its buttons is (arrow keys move within it), and a date-time field takes several Tabs."""
    total = page.locator(CONTROLS).count()
    page.evaluate("""selector => document.querySelectorAll(selector).forEach((e, i) => e.dataset.tabCheck = i)""", CONTROLS)
    reached: set[str] = set()
    page.locator("body").focus()
    for _ in range(total * 8 + 5):
        page.keyboard.press("Tab")
        index, left = page.evaluate("""() => [document.activeElement && document.activeElement.dataset.tabCheck,
                                               !document.activeElement || document.activeElement === document.body]""")
        if index is not None:
            reached.add(index)
        elif reached and left:  # past the last control: focus left the page (a focusable chart is not a control)
            break
    missed = page.evaluate(
        """([selector, reached]) => {
             const all = [...document.querySelectorAll(selector)];
             const groups = new Set(all.filter(e => e.type === 'radio' && reached.includes(e.dataset.tabCheck)).map(e => e.name));
             return all.filter(e => !reached.includes(e.dataset.tabCheck) && !(e.type === 'radio' && groups.has(e.name)))
                       .map(e => e.outerHTML.slice(0, 80));
           }""",
        [CONTROLS, sorted(reached)],
    )
    return total, missed


@pytest.mark.parametrize("path", [
    "/", "/login", "/events/{study_tour}", "/registrations/cancel", "/calendars",
    "/organizer", "/organizer/events", "/organizer/events/new?kind=contest", "/organizer/events/{study_tour}",
    "/organizer/events/{study_tour}/registrations", "/organizer/deliveries", "/organizer/endpoints",
    "/organizer/endpoints/new", "/privacy", "/me", "/organizer/erasure",
])
def test_every_control_is_reachable_by_keyboard(people, live_server: LiveServer, path: str) -> None:
    page = organizer(people, live_server) if path.startswith("/organizer") else people()
    page.goto(live_server(path.format(**live_server.ids)))
    total, missed = reached_by_tab(page)
    assert total > 0 and missed == [], missed


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_number_opens_only_its_owners_data_who_downloads_and_erases_it(people, live_server: LiveServer, clock, js: bool) -> None:
    digits = "7" if js else "8"
    phone = f"1380013{digits}701"
    owner, stranger = people(js), people(js)
    register(owner, live_server, live_server.ids["carnival"], "本人", phone)
    clock.advance(minutes=2)  # one code a minute per number

    # someone else types the owner's number: the code goes to the owner's phone, not to them
    stranger.goto(live_server(f"/events/{live_server.ids['study_tour']}"))
    form = stranger.locator("form:has(input[name=phone])")
    form.locator("input[name=name]").fill("冒用者")
    form.locator("input[name=phone]").fill(phone)
    with stranger.expect_navigation():
        form.get_by_role("button", name="获取验证码").click()
    form = stranger.locator("form:has(input[name=phone])")
    form.locator("input[name=code]").fill("000000" if texted_code(phone) != "000000" else "111111")
    form.locator("input[name=consent]").check()
    with stranger.expect_navigation():
        form.get_by_role("button", name="报名", exact=True).click()
    expect(stranger.locator("#code-error")).to_contain_text("验证码错误")
    stranger.goto(live_server("/me"))
    expect(stranger.locator("main")).not_to_contain_text("新会区科普嘉年华")

    # the owner proved the number when registering: "My registrations" shows it, with its data
    with owner.expect_navigation():
        owner.get_by_role("link", name="我的报名").first.click()
    expect(owner.locator("main table")).to_contain_text("新会区科普嘉年华")
    if js:
        with owner.expect_download() as download:
            owner.get_by_role("link", name=re.compile("下载我们保存的")).click()
        data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert [r["registration"]["phone"] for r in data["registrations"]] == [f"+86{phone}"]
    owner.locator("input[name=confirm]").check()
    with owner.expect_navigation():
        owner.get_by_role("button", name="删除我的全部数据").click()
    expect(owner.get_by_role("status")).to_contain_text("已删除 1 条报名")
    expect(owner.locator("main")).to_contain_text("没有使用此号码的报名")


def test_a_manager_erases_a_participant_on_request(people, live_server: LiveServer, clock) -> None:
    participant = people()
    phone = "13800139801"
    register(participant, live_server, live_server.ids["carnival"], "要求删除者", phone)
    manage = participant.locator("main a[href*='/m/']").first.get_attribute("href") or ""
    staff = organizer(people, live_server)
    staff.goto(live_server("/organizer/erasure"))
    staff.get_by_role("textbox", name="Phone number").fill(phone)
    staff.get_by_label("Request note (optional)").fill("申请编号 2024-017")
    with staff.expect_navigation():
        staff.get_by_role("button", name="Find the registrations").click()
    expect(staff.locator("#matches")).to_contain_text("新会区科普嘉年华")
    expect(staff.locator("main")).not_to_contain_text(phone)  # the number is shown masked only
    with staff.expect_navigation():
        staff.locator("#confirm-erasure").click()
    expect(staff.get_by_role("status").first).to_contain_text("1")
    assert participant.goto(manage).status == 404  # the participant's links are gone with the data
    # an administrator finds the erasure, and who read the list before it, in the audit log
    from scheduler.auth.operations import create_user

    live_server.run(lambda: create_user("auditor@example.org", "auditor-password", is_admin=True))
    admin = people()
    sign_in(admin, live_server.url, "auditor@example.org", "auditor-password")
    admin.goto(live_server("/organizer/audit?lang=en"))
    admin.get_by_label("Action").select_option("registrations.erase")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Show entries").click()
    row = admin.locator("#audit tbody tr").first
    expect(row).to_contain_text("Registrations erased on request")
    expect(row).to_contain_text("138****9801")
    expect(row).to_contain_text(live_server.organizer_email)
    expect(admin.locator("main")).not_to_contain_text(phone)
