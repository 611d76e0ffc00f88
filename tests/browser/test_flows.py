"""The pages that exist today, in a real browser: sign in, an event's page and its .ics link,
the organizers' dashboard, the calendar list and every feed on it, a participant's reminder page, the event list, registering
on an event's page and the confirmation, and a phone's width.

Elements are found by URL, form field names, button values and roles rather than by their
Chinese or English words, so the tests hold in both languages (``?lang=en``).
"""
from __future__ import annotations

import re

import icalendar
import pytest

from scheduler.util import time as clock_module
from tests.browser.conftest import LiveServer
from tests.browser.helpers import fill_registration, page_width, screenshot, sign_in, too_wide_elements
from tests.conftest import NOW

try:
    from playwright.sync_api import Page, expect
except ImportError:  # skipped by conftest, which says why
    Page = expect = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.browser

#: The phone screen every page must fit without scrolling sideways.
PHONE_WIDTH = 375


def _uid(live: LiveServer, event_id: int) -> str:
    from scheduler.events.models import Event
    from scheduler.extensions import db

    return live.run(lambda: db.session.get(Event, event_id).uid)


def _register(live: LiveServer, event_id: int, phone: str) -> tuple[int, str]:
    """Register through the app's operation; return the registration's id and its /m/ code."""
    from scheduler.channels.sms.links import manage_code
    from scheduler.events.models import Event
    from scheduler.extensions import db
    from scheduler.privacy.notice import NOTICE_VERSION
    from scheduler.registrations.operations import register

    def go() -> tuple[int, str]:
        registration, _token = register(db.session.get(Event, event_id), name="陈小明", phone=phone, channels=["sms"],
                                       consent_version=NOTICE_VERSION)
        return registration.id, manage_code(registration.id)

    return live.run(go)


def _calendar(body: bytes) -> icalendar.Calendar:
    assert body.startswith(b"BEGIN:VCALENDAR"), body[:80]
    return icalendar.Calendar.from_ical(body)


def test_organizer_signs_in_and_reaches_the_import_page(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server.url, live_server.organizer_email, "not the password")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("alert")).to_be_visible()

    sign_in(page, live_server.url, live_server.organizer_email, live_server.organizer_password)
    expect(page).to_have_url(live_server("/organizer"))  # the dashboard
    page.goto(live_server("/organizer/import"))
    expect(page.get_by_text(live_server.organizer_email)).to_be_visible()
    upload = page.locator("form[enctype='multipart/form-data']")
    expect(upload.locator("input[type=file][name=file]")).to_be_visible()
    expect(upload.locator("select[name=org] option")).not_to_have_count(0)
    expect(page.locator("form[action$='/logout'] button[type=submit]")).to_be_visible()


def test_organizer_opens_the_dashboard(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server.url, live_server.organizer_email, live_server.organizer_password)
    page.locator("nav.account a[href='/organizer']").click()
    expect(page).to_have_url(live_server("/organizer"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("2024")
    bars = page.get_by_role("progressbar")
    expect(bars.first).to_be_visible()
    assert bars.count() == page.locator("li.target").count() >= 5
    popular = page.locator("li.target[data-key=popularization_events]")
    expect(popular.locator("progress")).to_have_attribute("max", "5")
    chart = page.locator("figure.chart svg[role=img]")
    expect(chart).to_be_visible()
    expect(chart.locator("g.month")).to_have_count(12)
    expect(chart.locator("line.pace")).to_have_count(1)
    scheduled = sum(int(n) for n in chart.locator("g.month").evaluate_all("gs => gs.map(g => g.dataset.scheduled)"))
    expect(popular.locator("dd.scheduled")).to_have_text(str(scheduled))
    assert scheduled >= 2  # the seeded study tour and carnival, published and still ahead
    screenshot(page, "dashboard")

    page.goto(live_server("/organizer?lang=en"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Targets 2024")
    expect(chart.locator("text.month-label").first).to_have_text("Jan")


def test_event_page_adds_the_event_to_a_calendar(page: Page, live_server: LiveServer) -> None:
    event_id = live_server.ids["study_tour"]
    page.goto(live_server(f"/events/{event_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("走进五邑大学智能制造实验室")
    screenshot(page, "event")

    href = live_server(f"/events/{event_id}.ics")
    expect(page.locator(f"main a[href='{href}']")).to_have_count(1)
    expect(page.locator(f"main a[href='{href.replace('http://', 'webcal://', 1)}']")).to_have_count(1)

    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = _calendar(response.body())
    uids = [str(component["UID"]) for component in calendar.walk("VEVENT")]
    assert uids == [_uid(live_server, event_id)]


def test_every_feed_on_the_calendar_list_answers(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server("/calendars"))
    links = page.locator(f"main a[href^='{live_server.url}/'][href$='.ics']")
    hrefs = links.evaluate_all("links => links.map(a => a.href)")
    # all events, the five kinds, the seeded organizations and their counties
    assert len(hrefs) >= 1 + 5 + 7, hrefs
    assert live_server("/calendars/all.ics") in hrefs
    expect(page.locator("main a[href^='webcal://']")).to_have_count(len(hrefs))
    for href in hrefs:
        assert href.startswith(live_server.url), href
        response = page.request.get(href)
        assert response.status == 200, href
        assert response.headers["content-type"].startswith("text/calendar"), href
        _calendar(response.body())


def test_participant_stops_texts_for_the_event(page: Page, live_server: LiveServer) -> None:
    from scheduler.extensions import db
    from scheduler.registrations.models import Registration

    registration_id, code = _register(live_server, live_server.ids["carnival"], "13800138101")
    page.goto(live_server(f"/m/{code}"))
    stop = page.locator("button[name=action][value=stop_event]")
    main = page.locator("main")
    expect(main).not_to_contain_text(re.compile("已停止|stopped", re.I))

    stop.click()
    expect(page).to_have_url(live_server(f"/m/{code}"))
    expect(page.get_by_role("status")).to_be_visible()
    expect(stop).to_have_count(0)
    expect(page.locator("button[name=action][value=resume_event]")).to_be_visible()
    expect(main).to_contain_text(re.compile("已停止|stopped", re.I))
    channels = live_server.run(lambda: db.session.get(Registration, registration_id).channels)
    assert "sms" not in channels


def test_participant_finds_an_event_and_registers(page: Page, live_server: LiveServer) -> None:
    from scheduler.extensions import db
    from scheduler.registrations.models import Registration

    event_id = live_server.ids["carnival"]
    page.goto(live_server("/"))
    link = page.locator(f"main h3 a[href='/events/{event_id}']")
    expect(link).to_have_text("新会区科普嘉年华")
    link.click()
    expect(page).to_have_url(live_server(f"/events/{event_id}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("新会区科普嘉年华")

    fill_registration(page, "林小华", "13800138301")
    expect(page).to_have_url(re.compile(r"/registrations/\d+/confirmation$"))  # no private token in the URL
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("已报名|registered"))
    expect(page.get_by_role("status")).to_contain_text("林小华")
    expect(page.locator("main a[href^='webcal://'][href*='/calendars/personal/pc_']")).to_have_count(1)
    expect(page.locator("main a[href*='/m/']")).to_have_count(1)
    expect(page.locator("form[action$='/registrations/cancel'] button[type=submit]")).to_be_visible()
    status = live_server.run(lambda: db.session.scalar(
        db.select(Registration.status).where(Registration.event_id == event_id, Registration.phone == "+8613800138301")))
    assert status == "registered"


@pytest.fixture(scope="module")
def reminder_code(live_server: LiveServer) -> str:
    """The /m/ code of a participant of the carnival (texts on), registered at the suite's "now"."""
    with clock_module.frozen(NOW):
        return _register(live_server, live_server.ids["carnival"], "13800138201")[1]


@pytest.mark.parametrize("lang", ["", "?lang=en"], ids=["zh", "en"])
@pytest.mark.parametrize(
    "name", ["login", "events", "month", "event", "confirmation", "calendars", "reminders", "import", "dashboard",
             "organizer-events", "organizer-event", "event-form", "registrations", "deliveries", "endpoints", "endpoint-form",
             "privacy", "me", "erasure"],
)
def test_page_fits_a_phone_screen(phone_page: Page, live_server: LiveServer, reminder_code: str, name: str, lang: str) -> None:
    page = phone_page
    path = {
        "login": "/login",
        "event": f"/events/{live_server.ids['study_tour']}",
        "calendars": "/calendars",
        "reminders": f"/m/{reminder_code}",
        "import": "/organizer/import",
        "dashboard": "/organizer",
        "organizer-events": "/organizer/events",
        "organizer-event": f"/organizer/events/{live_server.ids['study_tour']}",
        "event-form": "/organizer/events/new?kind=tech_week",
        "registrations": f"/organizer/events/{live_server.ids['carnival']}/registrations",
        "deliveries": "/organizer/deliveries",
        "endpoints": "/organizer/endpoints",
        "endpoint-form": "/organizer/endpoints/new",
        "events": "/events",
        "month": "/events/calendar?month=2024-06",
        "confirmation": f"/events/{live_server.ids['carnival']}",
        "privacy": "/privacy",
        "me": "/me",
        "erasure": "/organizer/erasure",
    }[name]
    if lang and "?" in path:
        lang = lang.replace("?", "&")
    if name in ("import", "dashboard") or path.startswith("/organizer"):
        sign_in(page, live_server.url, live_server.organizer_email, live_server.organizer_password)
    response = page.goto(live_server(path + lang))
    assert response is not None and response.ok, response
    expect(page).to_have_url(live_server(path + lang))
    if name == "confirmation":  # register on the phone, then measure the confirmation page
        fill_registration(page, "手机用户", "1380013840" + ("2" if lang else "1"))
        expect(page).to_have_url(re.compile(r"/registrations/\d+/confirmation$"))
    width = page_width(page)
    if width <= PHONE_WIDTH:
        return
    culprits = too_wide_elements(page, PHONE_WIDTH)
    pytest.fail(f"{path + lang} is {width} px wide on a {PHONE_WIDTH} px screen (scrolls sideways); too wide: {culprits}")
