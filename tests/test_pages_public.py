"""The participants' pages: the event list and its filters, the month calendar, registering on the
event page (seat, waitlist, inline errors, CSRF, rate limit), the confirmation page and cancelling."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from flask import g

from scheduler.extensions import db
from scheduler.registrations.models import Registration
from tests.pages import html
from tests.factories import CST, create_city, create_event


@pytest.fixture
def city(ctx):
    return create_city()



def csrf(client, path: str) -> str:
    # The tests' requests share the ``ctx`` fixture's application context, where Flask-WTF keeps
    # the token it made for the first client's session; each client needs its own.
    g.pop("csrf_token", None)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html(client.get(path)))[1]


def register(client, event, phone: str, name: str = "陈小明", channels=("sms",), **extra):
    token = csrf(client, "/registrations/cancel")  # the session's token (the event page may show no form)
    data = {"csrf_token": token, "name": name, "phone": phone, "channels": list(channels), "consent": NOTICE_VERSION, **extra}
    return client.post(f"/events/{event.id}/register", data=data)


def event_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<h3><a href="/events/(\d+)">', page)]


# --- the list ---------------------------------------------------------------------------------------

def test_list_shows_upcoming_published_events_with_their_facts(client, city):
    tour = create_event(city["xinhui"], publish=True, capacity=2, title="新会研学", venue="新会科技馆", address="新会区会城")
    carnival = create_event(city["kaiping"], publish=True, kind="science_carnival", title="开平嘉年华",
                            starts_at=dt.datetime(2024, 6, 29, 9, 0, tzinfo=CST),
                            ends_at=dt.datetime(2024, 6, 29, 16, 0, tzinfo=CST),
                            details={})
    create_event(city["xinhui"], title="草稿活动")  # a draft
    create_event(city["xinhui"], publish=True, title="上月活动",
                 starts_at=dt.datetime(2024, 5, 18, 9, 0, tzinfo=CST), ends_at=dt.datetime(2024, 5, 18, 12, 0, tzinfo=CST))
    page = html(client.get("/events"))
    assert event_ids(html(client.get("/"))) == event_ids(page)
    assert event_ids(page) == [tour.id, carnival.id]
    assert "草稿活动" not in page and "上月活动" not in page
    assert "2024年6月22日 09:00" in page and "新会科技馆 新会区会城" in page and "科普研学游" in page
    assert "组织" in page and "剩余名额：2" in page
    for name in ("kind", "county", "org", "month"):  # every filter has a label
        assert f'<label for="filter-{name}">' in page and f'id="filter-{name}" name="{name}"' in page
    for n in range(1, 3):
        register(client, tour, f"1380013800{n}")
    assert "已满：候补" in html(client.get("/events"))


def test_list_filters(client, city):
    tour = create_event(city["xinhui"], publish=True, title="新会研学")
    lab = create_event(city["neutrino"], publish=True, kind="science_carnival", title="中微子开放日", details={},
                       starts_at=dt.datetime(2024, 7, 6, 9, 0, tzinfo=CST), ends_at=dt.datetime(2024, 7, 6, 12, 0, tzinfo=CST))
    assert event_ids(html(client.get("/events?kind=study_tour"))) == [tour.id]
    assert event_ids(html(client.get("/events?kind=science_carnival&county=&org="))) == [lab.id]
    assert event_ids(html(client.get("/events?county=kaiping"))) == [lab.id]
    assert event_ids(html(client.get("/events?org=xinhui"))) == [tour.id]
    assert event_ids(html(client.get("/events?org=bureau"))) == [tour.id, lab.id]
    assert event_ids(html(client.get("/events?month=2024-07"))) == [lab.id]
    assert event_ids(html(client.get("/events?month=2024-05"))) == []  # over: nothing upcoming, no error
    page = html(client.get("/events?kind=study_tour&county=xinhui"))
    assert '<option value="study_tour" selected>' in page and '<option value="xinhui" selected>' in page
    assert "Unknown" not in html(client.get("/events?county=atlantis"), 400)
    html(client.get("/events?month=June"), 400)
    html(client.get("/events?page=0"), 400)


def test_list_is_paginated_keeping_the_filters(client, city):
    for n in range(23):
        create_event(city["xinhui"], publish=True, title=f"活动{n:02d}",
                     starts_at=dt.datetime(2024, 7, 1, 9, n, tzinfo=CST), ends_at=dt.datetime(2024, 7, 1, 11, 0, tzinfo=CST))
    first = html(client.get("/events?kind=study_tour"))
    assert len(event_ids(first)) == 20 and "第 1 / 2 页" in first
    assert 'href="/events?kind=study_tour&amp;page=2" rel="next"' in first
    second = html(client.get("/events?kind=study_tour&page=2"))
    assert len(event_ids(second)) == 3 and 'href="/events?kind=study_tour&amp;page=1" rel="prev"' in second


# --- the month calendar ------------------------------------------------------------------------------

def test_month_calendar(client, city):
    tour = create_event(city["xinhui"], publish=True, title="新会研学")  # Saturday 22 June
    week = create_event(city["kaiping"], publish=True, kind="tech_week", title="科技周", details={},
                        starts_at=dt.date(2024, 6, 29), ends_at=dt.date(2024, 7, 2), all_day=True)  # the last day, inclusive
    weekly = create_event(city["xinhui"], publish=True, title="每周讲座", rrule="FREQ=WEEKLY;COUNT=3",
                          starts_at=dt.datetime(2024, 6, 4, 19, 0, tzinfo=CST),
                          ends_at=dt.datetime(2024, 6, 4, 20, 0, tzinfo=CST))
    page = html(client.get("/events/calendar?month=2024-06"))
    assert "<table" in page and "2024年6月" in page
    assert re.findall(r'<th scope="col"><abbr title="([^"]+)">', page) == ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]
    cells = {int(day): cell for day, cell in re.findall(r'<span class="day">(\d+)</span>(.*?)</td>', page, re.S)}
    assert f'/events/{tour.id}"' in cells[22] and "09:00" in cells[22]
    assert all(f'/events/{weekly.id}"' in cells[day] for day in (4, 11, 18))
    assert f'/events/{weekly.id}"' not in cells[25]
    assert f'/events/{week.id}"' in cells[29] and f'/events/{week.id}"' in cells[30]
    assert 'href="/events/calendar?month=2024-05" rel="prev"' in page
    assert 'href="/events/calendar?month=2024-07" rel="next"' in page
    july = html(client.get("/events/calendar?month=2024-07&kind=tech_week"))
    cells = {int(day): cell for day, cell in re.findall(r'<span class="day">(\d+)</span>(.*?)</td>', july, re.S)}
    assert f'/events/{week.id}"' in cells[1] and f'/events/{week.id}"' in cells[2] and f'/events/{week.id}"' not in cells[3]
    assert 'href="/events/calendar?kind=tech_week&amp;month=2024-06" rel="prev"' in july
    only_kaiping = html(client.get("/events/calendar?month=2024-06&county=kaiping"))
    assert f"/events/{tour.id}\"" not in only_kaiping and f"/events/{week.id}\"" in only_kaiping
    # without a month: this month (the suite's clock: June 2024), today marked
    assert 'aria-current="date"' in html(client.get("/events/calendar"))
    html(client.get("/events/calendar?month=2024-13"), 400)


# --- registering --------------------------------------------------------------------------------------

def test_register_seated_then_waitlisted(client, city):
    event = create_event(city["xinhui"], publish=True, capacity=1)
    first = register(client, event, "13800138001", name="第一人")
    assert first.status_code == 303
    location = first.headers["Location"]
    assert re.fullmatch(r"/registrations/\d+/confirmation", location)  # no token in the URL
    page = html(client.get(location))
    assert "您已报名" in page and "第一人" in page
    seated = db.session.scalar(db.select(Registration).where(Registration.phone == "+8613800138001"))
    assert seated.status == "registered"
    assert "/m/" in page and "webcal://" in page and "calendar.google.com" in page and "/calendars/personal/pc_" in page
    assert 'action="/registrations/cancel"' in page and 'name="token" value="r_' in page

    second = register(client, event, "13800138002", name="第二人")
    page = html(client.get(second.headers["Location"]))
    assert "候补" in page and "第 1 位" in page
    waiting = db.session.scalar(db.select(Registration).where(Registration.phone == "+8613800138002"))
    assert waiting.status == "waitlisted"


def test_confirmation_is_only_for_the_browser_that_registered(client, app, city):
    event = create_event(city["xinhui"], publish=True)
    location = register(client, event, "13800138001").headers["Location"]
    html(app.test_client().get(location), 404)
    html(client.get("/registrations/999999/confirmation"), 404)


def test_bad_input_is_shown_next_to_the_fields(client, city):
    event = create_event(city["xinhui"], publish=True)
    response = register(client, event, "12345", name="王五")
    page = html(response, 422)
    assert 'id="phone-error"' in page and "请填写手机号码" in page
    assert 'aria-invalid="true" aria-describedby="phone-error"' in page
    assert 'value="王五"' in page and 'value="12345"' in page  # what was typed stays
    page = html(register(client, event, "13800138001", name="  "), 422)
    assert 'id="name-error"' in page and "请填写姓名" in page
    page = html(register(client, event, "13800138001", consent=""), 422)
    assert 'id="consent-error"' in page and "报名前请阅读并同意隐私声明。" in page
    assert 'value="13800138001"' in page and 'name="consent" value="2026-12" aria-invalid="true"' in page  # not ticked
    page = html(register(client, event, "13800138001", consent="2020-01"), 422)
    assert "隐私声明已更新，请重新阅读并同意。" in page
    assert "email" not in html(client.get(f"/events/{event.id}"))  # no e-mail address is asked for
    english = client.post(f"/events/{event.id}/register?lang=en", data={
        "csrf_token": csrf(client, f"/events/{event.id}"), "name": "Wang", "phone": "abc", "channels": ["sms"]})
    assert "Give a mobile number such as 13800138000." in html(english, 422)
    assert db.session.scalar(db.select(db.func.count()).select_from(Registration)) == 0


def test_conflicts_are_explained(client, city):
    event = create_event(city["xinhui"], publish=True)
    register(client, event, "13800138001")
    page = html(register(client, event, "138 0013 8001"), 409)
    # an unproved number: the page does not say whether it is registered
    assert "未能完成报名" in page and "已报名本活动" not in page


def test_registration_needs_the_csrf_token(client, city):
    event = create_event(city["xinhui"], publish=True)
    response = client.post(f"/events/{event.id}/register", data={"name": "张三", "phone": "13800138001", "channels": ["sms"]})
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count()).select_from(Registration)) == 0


def test_registration_is_rate_limited(client, app, city, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_REGISTRATIONS", "2 per minute")
    event = create_event(city["xinhui"], publish=True)
    statuses = [register(client, event, f"1380013800{n}").status_code for n in range(1, 4)]
    assert statuses[:2] == [303, 303]
    assert statuses[2] == 429
    assert "请稍等几分钟再试" in html(register(client, event, "13800138009"), 429)


def test_closed_registration_shows_no_form(client, city):
    event = create_event(city["xinhui"], publish=True,
                         starts_at=dt.datetime(2024, 6, 15, 9, 0, tzinfo=CST),
                         ends_at=dt.datetime(2024, 6, 15, 18, 0, tzinfo=CST))
    page = html(client.get(f"/events/{event.id}"))
    assert 'name="phone"' not in page and "本活动已停止报名" in page
    assert "本活动已停止报名" in html(register(client, event, "13800138001"), 409)


def test_script_in_a_name_is_escaped_on_the_confirmation_page(client, city):
    event = create_event(city["xinhui"], publish=True)
    name = '<script>alert("x")</script>'
    page = html(client.get(register(client, event, "13800138001", name=name).headers["Location"]))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    again = html(register(client, event, "bad", name=name), 422)  # and where the form is shown again
    assert "<script>" not in again and 'value="&lt;script&gt;' in again


def test_cancel_from_the_confirmation_page_promotes_the_waitlist(client, app, city):
    event = create_event(city["xinhui"], publish=True, capacity=1)
    first = register(client, event, "13800138001").headers["Location"]
    other = app.test_client()
    assert register(other, event, "13800138002").status_code == 303
    g.pop("csrf_token", None)  # see csrf()
    page = html(client.get(first))
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    form_csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    assert client.post("/registrations/cancel", data={"token": token}).status_code == 400  # CSRF
    answer = client.post("/registrations/cancel", data={"csrf_token": form_csrf, "token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == f"/events/{event.id}"
    assert "您的报名已取消" in html(client.get(answer.headers["Location"]))
    rows = db.session.execute(db.select(Registration.phone, Registration.status).where(Registration.event_id == event.id))
    statuses = dict(rows.all())
    assert statuses == {"+8613800138001": "cancelled", "+8613800138002": "registered"}
    html(client.get(first), 404)  # the private links are gone from this browser
    again = client.post("/registrations/cancel", data={"csrf_token": form_csrf, "token": token}, follow_redirects=True)
    assert "已经取消" in html(again)
    wrong = html(client.post("/registrations/cancel", data={"csrf_token": form_csrf, "token": "r_nope"}), 422)
    assert "没有使用该代码的报名" in wrong
    assert '<label for="cancel-token">' in html(client.get("/registrations/cancel"))


def test_pages_in_english(client, city):
    event = create_event(city["xinhui"], publish=True, capacity=1)
    page = html(client.get("/events?lang=en"))
    assert '<html lang="en">' in page and "Upcoming events" in page and "Jun 22, 2024" in page and "Seats left: 1" in page
    assert "年" not in page.replace("研学活动", "")
    calendar = html(client.get("/events/calendar?month=2024-06&lang=en"))
    assert "June 2024" in calendar and '<abbr title="Monday">Mon</abbr>' in calendar
    assert 'href="/events/calendar?month=2024-07&amp;lang=en"' in calendar
    form = html(client.get(f"/events/{event.id}?lang=en"))
    assert "Mobile number" in form and "Remind me by" in form and "Register" in form
    location = register(client, event, "13800138001").headers["Location"]
    assert "You are registered" in html(client.get(location + "?lang=en"))
    location = register(client, event, "13800138002").headers["Location"]
    assert "number 1 on the waitlist" in html(client.get(location + "?lang=en"))


def test_the_event_page_title_is_the_event_s_title_only(client, ctx):
    from tests.factories import create_event, create_org

    event = create_event(create_org("wyu"), publish=True)
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert event.title in title and "<form" not in title and page.count('id="register"') == 1


# --- the kind's own details (one partial, shared with the organizers' event page) ---------------------

def details_block(page: str) -> str:
    match = re.search(r'<section aria-labelledby="event-details-heading".*?</section>', page, re.S)
    assert match, page
    return match[0]


def detail(block: str, name: str) -> str:
    """The text of one detail (tags dropped, items one a line)."""
    match = re.search(rf'<div class="detail" data-detail="{name}">\s*<dt>.*?</dt>\s*<dd>(.*?)</dd>', block, re.S)
    assert match, (name, block)
    return re.sub(r"<[^>]+>", "\n", match[1]).replace("\n\n", "\n").strip().replace("\u202f", " ")


def test_study_tour_page_shows_meeting_ages_and_itinerary(client, city):
    tour = create_event(city["xinhui"], publish=True, details={
        "meeting_point": "江门市科技馆北门", "meeting_time": "2024-06-22T08:15:00+08:00", "age_min": 10, "age_max": 14,
        "itinerary": [{"time": "09:30", "place": "中微子实验室", "note": "参观<探测器>"}, {"place": "五邑大学"}],
    })
    block = details_block(html(client.get(f"/events/{tour.id}")))
    assert "<h2 id=\"event-details-heading\">活动详情</h2>" in block
    assert detail(block, "meeting_point") == "江门市科技馆北门"
    assert detail(block, "meeting_time") == "2024年6月22日 08:15" and 'datetime="2024-06-22T08:15:00+08:00"' in block
    assert detail(block, "ages") == "10至14岁"
    assert "<ol><li>09:30 中微子实验室 — 参观&lt;探测器&gt;</li><li>五邑大学</li></ol>" in block  # escaped, in order
    block = details_block(html(client.get(f"/events/{tour.id}?lang=en")))
    assert "About this event" in block and "Meeting point" in block and "Itinerary" in block
    assert detail(block, "meeting_time") == "Jun 22, 2024, 8:15 AM" and detail(block, "ages") == "10 to 14 years old"


def test_a_tour_without_a_meeting_time_meets_at_the_start(client, city):
    tour = create_event(city["xinhui"], publish=True, details={"meeting_point": "北门", "age_min": 6})
    block = details_block(html(client.get(f"/events/{tour.id}")))
    assert detail(block, "meeting_time") == "2024年6月22日 09:00" and detail(block, "ages") == "6岁及以上"


def test_matchmaking_contest_tech_week_and_carnival_pages_show_their_details(client, city):
    fair = create_event(city["xinhui"], publish=True, kind="matchmaking", title="邑科汇",
                        details={"sector": "home_appliances", "partners": ["五邑大学", "江门双碳实验室"], "achievements_planned": 25})
    contest = create_event(city["xinhui"], publish=True, kind="contest", title="科技杯",
                           starts_at=dt.datetime(2024, 9, 20, 9, tzinfo=CST), ends_at=dt.datetime(2024, 9, 20, 17, tzinfo=CST),
                           details={"registration_deadline": "2024-08-31T10:00:00Z", "preliminary_at": "2024-09-07T09:00:00+08:00",
                                    "final_at": "2024-09-20T09:00:00+08:00", "award_ceremony_at": "2024-09-20T16:00:00+08:00"})
    week = create_event(city["xinhui"], publish=True, kind="tech_week", title="科技活动周", details={
        "theme": "热爱科学 崇尚科学", "sessions": [
            {"title": "开幕式", "starts_at": "2024-06-22T09:00:00+08:00", "ends_at": "2024-06-22T10:30:00+08:00",
             "venue": "江门市科技馆", "county": "pengjiang"}]})
    carnival = create_event(city["xinhui"], publish=True, kind="science_carnival", title="嘉年华",
                            details={"theme": "科技点亮生活", "booths": 40, "expected_attendance": 5000, "audience": "亲子家庭"})
    block = details_block(html(client.get(f"/events/{fair.id}")))
    assert detail(block, "sector") == "家电" and detail(block, "partners") == "五邑大学\n江门双碳实验室"
    assert detail(block, "achievements_planned") == "25"
    block = details_block(html(client.get(f"/events/{contest.id}")))
    assert detail(block, "registration_deadline") == "2024年8月31日 18:00"  # 10:00 UTC, shown in Shanghai time
    assert detail(block, "preliminary_at") == "2024年9月7日 09:00" and detail(block, "final_at") == "2024年9月20日 09:00"
    assert detail(block, "award_ceremony_at") == "2024年9月20日 16:00"
    assert [name for name in re.findall(r'data-detail="(\w+)"', block)] == [
        "registration_deadline", "preliminary_at", "final_at", "award_ceremony_at"]
    block = details_block(html(client.get(f"/events/{week.id}")))
    assert detail(block, "theme") == "热爱科学 崇尚科学"
    assert detail(block, "sessions") == "2024年6月22日 09:00–10:30 开幕式 · 江门市科技馆 · 蓬江区"
    block = details_block(html(client.get(f"/events/{carnival.id}")))
    assert (detail(block, "theme"), detail(block, "booths"), detail(block, "audience")) == ("科技点亮生活", "40", "亲子家庭")
    assert detail(block, "expected_attendance") == "5000" and "预计人数" in block
    # in English
    assert detail(details_block(html(client.get(f"/events/{fair.id}?lang=en"))), "sector") == "Home appliances"
    block = details_block(html(client.get(f"/events/{week.id}?lang=en")))
    assert detail(block, "sessions") == "Jun 22, 2024, 9:00 AM–10:30 AM 开幕式 · 江门市科技馆 · Pengjiang District"
    block = details_block(html(client.get(f"/events/{contest.id}?lang=en")))
    assert "Registration deadline" in block and "Award ceremony" in block and detail(block, "final_at") == "Sep 20, 2024, 9:00 AM"


def test_an_event_without_details_shows_no_details_section(client, city):
    carnival = create_event(city["xinhui"], publish=True, kind="science_carnival", details={})
    assert "event-details-heading" not in html(client.get(f"/events/{carnival.id}"))
