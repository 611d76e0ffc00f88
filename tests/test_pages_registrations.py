"""The organizers' registrations page (/organizer/events/<id>/registrations): the seated people, the
waitlist, the cancelled; phone numbers masked for viewers; search; check-in at the door (page and
API); the CSV export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import unquote

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from flask import g

from scheduler.api.errors import Conflict
from scheduler.extensions import db
from scheduler.registrations import operations
from scheduler.registrations.models import Registration
from tests.factories import CST, auth, create_city, create_event, create_user
from tests.pages import html, sign_in

#: The event's day (its start is 09:00 on the 22nd): the door is open.
EVENT_MORNING = dt.datetime(2024, 6, 22, 8, 30, tzinfo=CST)


@pytest.fixture
def city(ctx):
    return create_city()


@pytest.fixture
def tour(city):
    """A published study tour of Xinhui with 2 seats, on 2024-06-22 09:00–12:00 (Shanghai)."""
    return create_event(city["xinhui"], publish=True, capacity=2, title="走进中微子实验室")


def enrol(event, clock, *names: str, channels=("sms",)) -> dict[str, tuple[Registration, str]]:
    """Register ``names`` one minute apart (phones 13800138001, …); ``{name: (registration, token)}``."""
    made = {}
    for number, name in enumerate(names, start=1):
        made[name] = operations.register(event, name=name, phone=f"1380013800{number}", channels=list(channels),
                                         consent_version=NOTICE_VERSION)
        clock.advance(minutes=1)
    db.session.commit()
    return made



def signed_in(client, role: str | None, org, **kwargs):
    """``client`` signed in as a new user with ``role`` in ``org``; returns the user."""
    user = create_user(role, org, **kwargs)
    assert sign_in(client, user.email).status_code == 302
    return user


def token_of(client, path: str) -> str:
    g.pop("csrf_token", None)  # the ctx fixture's app context keeps the token of an earlier session
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html(client.get(path)))[1]


def table(page: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}".*?</table>', page, re.S)
    return match[0] if match else ""


def names_in(page: str, table_id: str) -> list[str]:
    return re.findall(r'<th scope="row"(?: id="name-\d+")?>([^<]*)</th>', table(page, table_id))


def url(event) -> str:
    return f"/organizer/events/{event.id}/registrations"


def door(client, registration, action: str, token: str, **data):
    """Press a check-in (``action="check-in"``) or undo button; the list it goes back to."""
    return client.post(f"/organizer/registrations/{registration.id}/{action}", data={"csrf_token": token, **data},
                       follow_redirects=True)


def reload(registration: Registration) -> Registration:
    db.session.expire_all()
    return db.session.get(Registration, registration.id)


# --- reading -------------------------------------------------------------------------------------------

def test_sign_in_needed(client, tour):
    for path in (url(tour), url(tour) + ".csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert client.post("/organizer/registrations/1/check-in").status_code in (302, 400)


def test_editor_sees_counts_sections_and_full_numbers(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明", "李华", "王芳", "赵强")
    operations.cancel_registration(people["赵强"][0])
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(tour)))
    assert "<h1>报名名单</h1>" in page
    assert f'<a href="/organizer/events/{tour.id}">走进中微子实验室</a>' in page
    assert re.search(r'id="count-seated">2 / 2 个名额<', page)
    assert 'id="count-waitlisted">1<' in page and 'id="count-cancelled">1<' in page and 'id="count-checked-in">0<' in page
    assert names_in(page, "seated") == ["陈小明", "李华"]
    assert names_in(page, "waitlist") == ["王芳"]
    assert names_in(page, "cancelled") == ["赵强"]
    assert "+8613800138001" in table(page, "seated") and "****" not in page
    assert "短信" in table(page, "seated") and "2024年6月15日 10:00" in table(page, "seated")
    assert '<time datetime="2024-06-15T10:00:00+08:00">' in page  # local times, machine-readable too
    assert f'href="/organizer/events/{tour.id}/registrations.csv"' in page
    assert '<label for="q">' in page
    # the door is not open a week ahead: no buttons, and the reason
    assert "签到将于 2024年6月21日 09:00 开放" in page and 'action="/organizer/registrations/' not in page
    assert client.get(url(tour)).headers["Cache-Control"] == "private, no-store"
    english = html(client.get(url(tour) + "?lang=en"))
    assert "<h1>Registrations</h1>" in english and "2 of 2 seats" in english and "Waitlist" in english
    assert "Text message" in english and "Jun 15, 2024" in english and "Check-in opens at Jun 21, 2024" in english


def test_viewer_sees_masked_numbers_and_no_buttons(client, city, tour, clock):
    enrol(tour, clock, "陈小明", "李华", "王芳")
    clock.set(EVENT_MORNING)
    signed_in(client, "viewer", city["xinhui"])
    page = html(client.get(url(tour)))
    assert "+86 138****8001" in table(page, "seated") and "+86 138****8003" in table(page, "waitlist")
    assert "+8613800138001" not in page
    assert 'action="/organizer/registrations/' not in page and "签到将于" not in page
    assert "您是查看者" in page
    rows = list(csv.reader(io.StringIO(client.get(url(tour) + ".csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert [row[3] for row in rows[1:]] == ["138****8001", "138****8002", "138****8003"]
    # the POST is refused too, not only hidden
    registration = db.session.scalar(db.select(Registration).where(Registration.name == "陈小明"))
    g.pop("csrf_token", None)
    token = token_of(client, "/registrations/cancel")
    assert client.post(f"/organizer/registrations/{registration.id}/check-in", data={"csrf_token": token}).status_code == 403
    assert reload(registration).checked_in_at is None


def test_a_viewer_above_inherits_and_searching_digits_reveals_nothing(client, city, tour, clock):
    enrol(tour, clock, "陈小明", "李华")
    signed_in(client, "viewer", city["bureau"])
    page = html(client.get(url(tour) + "?q=8002"))
    assert names_in(page, "seated") == ["李华"]
    # a viewer typing a whole number is matched on its last 4 digits only (which the mask shows)
    page = html(client.get(url(tour) + "?q=13900138001"))
    assert names_in(page, "seated") == ["陈小明"]


def test_other_organizations_are_refused(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明")
    draft = create_event(city["xinhui"], capacity=5)
    user = signed_in(client, "editor", city["kaiping"])
    assert client.get(url(tour)).status_code == 403
    assert client.get(url(tour) + ".csv").status_code == 403
    assert client.get(url(draft)).status_code == 404  # a draft of another organization does not exist for them
    assert client.get("/organizer/events/999999/registrations").status_code == 404
    assert client.get("/organizer/events/99999999999/registrations").status_code == 404
    clock.set(EVENT_MORNING)
    token = token_of(client, "/registrations/cancel")
    registration = people["陈小明"][0]
    assert client.post(f"/organizer/registrations/{registration.id}/check-in", data={"csrf_token": token}).status_code == 403
    assert client.post("/organizer/registrations/999999/check-in", data={"csrf_token": token}).status_code == 404
    headers = auth(user)
    assert client.post(f"/api/v1/registrations/{registration.id}/check-in", headers=headers).status_code == 403
    assert reload(registration).checked_in_at is None


def test_waitlist_in_order_with_positions(client, city, clock):
    event = create_event(city["xinhui"], publish=True, capacity=1)
    people = enrol(event, clock, "一号", "二号", "三号", "四号")
    # two more registering at the very same moment: the earlier id is ahead, as promotion goes
    clock.advance(minutes=5)
    same = [operations.register(event, name=name, phone=phone, channels=["sms"], consent_version=NOTICE_VERSION)[0] 
            for name, phone in (("五号", "13900139005"), ("六号", "13900139006"))]
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(event)))
    waitlist = table(page, "waitlist")
    assert names_in(page, "waitlist") == ["二号", "三号", "四号", "五号", "六号"]
    assert re.findall(r'<td class="position">(\d+)</td>', waitlist) == ["1", "2", "3", "4", "5"]
    assert [operations.waitlist_position(people[n][0]) for n in ("二号", "三号", "四号")] == [1, 2, 3]
    assert [operations.waitlist_position(r) for r in same] == [4, 5]
    assert "先到先得" in page


def test_cancelling_on_the_public_page_promotes_and_the_organizer_sees_it(client, app, city, tour, clock):
    people = enrol(tour, clock, "陈小明", "李华", "王芳", "赵强")
    clock.advance(hours=2)
    participant = app.test_client()
    form_token = token_of(participant, "/registrations/cancel")
    answer = participant.post("/registrations/cancel", data={"csrf_token": form_token, "token": people["陈小明"][1]})
    assert answer.status_code == 303
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(tour)))
    assert names_in(page, "seated") == ["李华", "王芳"]
    promoted_row = re.search(r'<tr id="registration-\d+">\s*<th scope="row" id="name-\d+">王芳</th>.*?</tr>', page, re.S)[0]
    assert "由候补转入" in promoted_row and "2024年6月15日 12:04" in promoted_row  # seated when the seat was freed
    assert "由候补转入" not in re.search(r"<tr[^>]*>\s*<th[^>]*>李华</th>.*?</tr>", page, re.S)[0]
    assert names_in(page, "waitlist") == ["赵强"] and '<td class="position">1</td>' in table(page, "waitlist")
    assert names_in(page, "cancelled") == ["陈小明"]
    assert 'id="count-cancelled">1<' in page
    assert "Promoted from the waitlist" in html(client.get(url(tour) + "?lang=en"))


def test_search_by_name_or_last_four_digits(client, city, tour, clock):
    enrol(tour, clock, "陈小明", "李华", "陈静")
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(tour) + "?q=陈"))
    assert names_in(page, "seated") == ["陈小明"] and names_in(page, "waitlist") == ["陈静"]
    assert "“陈”的查找结果：2 人" in page and 'value="陈"' in page and "显示全部" in page
    assert names_in(html(client.get(url(tour) + "?q=8002")), "seated") == ["李华"]
    whole_number = html(client.get(url(tour), query_string={"q": "138 0013 8002"}))  # editors: the whole number too
    assert names_in(whole_number, "seated") == ["李华"]
    nobody = html(client.get(url(tour) + "?q=9999"))
    assert names_in(nobody, "seated") == [] and "此处没有符合查找条件的人" in nobody
    assert names_in(html(client.get(url(tour) + "?q=%25")), "seated") == []  # LIKE wildcards are plain text


def test_long_lists_are_paged_keeping_the_search(client, city, clock, monkeypatch):
    from scheduler.pages import organizer_registrations

    monkeypatch.setattr(organizer_registrations, "PER_PAGE", 2)
    event = create_event(city["xinhui"], publish=True, capacity=5)
    enrol(event, clock, "甲一", "甲二", "甲三", "乙四")
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(event) + "?q=甲"))
    assert names_in(page, "seated") == ["甲一", "甲二"] and "第 1 / 2 页" in page
    next_url = re.search(r'<a href="([^"]+)" rel="next">', page)[1].replace("&amp;", "&")
    assert next_url == f"{url(event)}?q=%E7%94%B2&seated_page=2#seated-heading"
    next_url = next_url.split("#")[0]
    assert names_in(html(client.get(next_url)), "seated") == ["甲三"]


def test_names_are_escaped(client, city, tour, clock):
    enrol(tour, clock, '<script>alert("x")</script>')
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(tour), query_string={"q": "<script>"}))
    assert "<script>" not in page and "&lt;script&gt;alert(" in page


# --- check-in at the door ---------------------------------------------------------------------------

def test_check_in_and_undo_on_the_page(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明", "李华")
    clock.set(EVENT_MORNING)
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(url(tour) + "?q=陈"))
    registration = people["陈小明"][0]
    action = f'action="/organizer/registrations/{registration.id}/check-in"'
    assert action in page
    assert re.search(rf'<button type="submit" aria-describedby="name-{registration.id}">签到</button>', page)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]
    answer = client.post(f"/organizer/registrations/{registration.id}/check-in", data={"csrf_token": token, "q": "陈"})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{url(tour)}?q=%E9%99%88"  # back to the same search
    assert reload(registration).checked_in_at == EVENT_MORNING
    page = html(client.get(answer.headers["Location"]))
    assert "陈小明 已签到。" in page and 'id="count-checked-in">1<' in page
    assert "✓ 已签到" in table(page, "seated") and ">撤销签到</button>" in page
    # again (a double tap): told when, nothing changes
    clock.advance(minutes=3)
    again = door(client, registration, "check-in", token)
    assert "陈小明 已于 2024年6月22日 08:30 签到过了。" in html(again)
    assert reload(registration).checked_in_at == EVENT_MORNING
    undone = door(client, registration, "undo-check-in?lang=en", token)
    assert "Check-in of 陈小明 undone." in html(undone)
    assert reload(registration).checked_in_at is None
    english = html(client.get(url(tour) + "?lang=en"))
    assert ">Check in</button>" in english and 'id="count-checked-in">0<' in english


def test_check_in_is_refused_with_a_reason(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明", "李华", "王芳")
    signed_in(client, "editor", city["xinhui"])
    token = token_of(client, url(tour))
    seated, waiting = people["陈小明"][0], people["王芳"][0]

    def post(registration, **data):
        return door(client, registration, "check-in", token, **data)

    # a week before: the door is not open
    assert "签到将于 2024年6月21日 09:00 开放" in html(post(seated))
    clock.set(EVENT_MORNING)
    page = html(post(waiting))
    assert re.search(r'<p role="alert" class="error"><strong>王芳 在候补名单上，尚无名额', page)
    operations.cancel_registration(people["李华"][0])  # 王芳 takes the seat; 李华 is cancelled
    db.session.commit()
    assert "李华 已取消报名，无法签到。" in html(post(people["李华"][0]))
    assert "陈小明 尚未签到。" in html(door(client, seated, "undo-check-in", token))
    # after the end of the event's last day
    clock.set(dt.datetime(2024, 6, 23, 0, 0, tzinfo=CST))
    assert "签到已于 2024年6月23日 00:00 结束" in html(post(seated))
    assert all(reload(r).checked_in_at is None for r in (seated, waiting, people["李华"][0]))
    # without the CSRF token
    clock.set(EVENT_MORNING)
    assert client.post(f"/organizer/registrations/{seated.id}/check-in").status_code == 400
    assert reload(seated).checked_in_at is None


def test_the_check_in_window(ctx, city, tour, clock):
    registration = enrol(tour, clock, "陈小明")["陈小明"][0]
    opens, closes = operations.check_in_window(tour)
    assert (opens, closes) == (dt.datetime(2024, 6, 21, 9, tzinfo=CST), dt.datetime(2024, 6, 23, 0, tzinfo=CST))
    for moment, allowed in ((opens - dt.timedelta(seconds=1), False), (opens, True),
                            (closes - dt.timedelta(seconds=1), True), (closes, False)):
        clock.set(moment)
        refusal = operations.check_in_refusal(tour)
        assert (refusal is None) == allowed, moment
    clock.set(EVENT_MORNING)
    tour.status = "cancelled"
    with pytest.raises(Conflict) as refused:
        operations.check_in(registration)
    assert refused.value.code == "event_cancelled"
    tour.status = "draft"
    assert operations.check_in_refusal(tour).code == "event_draft"


def test_check_in_through_the_api(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明", "李华", "王芳")
    editor = auth(create_user("editor", city["xinhui"]))
    viewer = auth(create_user("viewer", city["xinhui"]))
    seated, waiting = people["陈小明"][0], people["王芳"][0]
    path = f"/api/v1/registrations/{seated.id}/check-in"
    early = client.post(path, headers=editor)
    assert early.status_code == 409 and early.json["error"]["code"] == "check_in_not_open"
    clock.set(EVENT_MORNING)
    assert client.post(path).status_code == 401
    assert client.post(path, headers=viewer).status_code == 403
    done = client.post(path, headers=editor)
    assert done.status_code == 200
    assert done.json["checked_in_at"] == "2024-06-22T00:30:00Z"
    assert done.json["phone"] == "+8613800138001"
    assert client.post(path, headers=editor).json["error"]["code"] == "already_checked_in"
    refused = client.post(f"/api/v1/registrations/{waiting.id}/check-in", headers=editor)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "waitlisted"
    assert client.delete(path, headers=viewer).status_code == 403
    undone = client.delete(path, headers=editor)
    assert undone.status_code == 200 and undone.json["checked_in_at"] is None
    assert client.delete(path, headers=editor).json["error"]["code"] == "not_checked_in"
    assert client.post("/api/v1/registrations/999999/check-in", headers=editor).status_code == 404
    listed = client.get(f"/api/v1/events/{tour.id}/registrations", headers=editor).json["items"]
    assert all(item["checked_in_at"] is None for item in listed)


def test_registering_again_after_cancelling_starts_afresh(ctx, city, tour, clock):
    registration = enrol(tour, clock, "陈小明")["陈小明"][0]
    clock.set(EVENT_MORNING)
    operations.check_in(registration)
    operations.cancel_registration(registration)
    again, _ = operations.register(tour, name="陈小明", phone="13800138001", channels=["sms"], consent_version=NOTICE_VERSION)  # 08:30: open until the 09:00 start
    assert again.id == registration.id and again.status == "registered" and again.checked_in_at is None
    assert not operations.was_promoted(again)


# --- the CSV export -------------------------------------------------------------------------------

def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_for_an_editor(client, city, tour, clock):
    people = enrol(tour, clock, "陈小明", '=HYPERLINK("http://evil.example","点我")', "王芳", "@SUM(1+1)")
    clock.advance(hours=1)
    operations.cancel_registration(people["陈小明"][0])
    db.session.commit()
    clock.set(EVENT_MORNING)
    operations.check_in(people["王芳"][0])
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    response = client.get(url(tour) + ".csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "private, no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="registrations-{tour.id}.csv"; filename*=UTF-8\'\'')
    assert disposition.isascii()
    assert unquote(disposition.split("UTF-8''", 1)[1]) == "走进中微子实验室 - 报名名单.csv"
    rows = read_csv(response)
    assert rows[0] == ["状态", "候补位次", "姓名", "手机号码", "提醒方式", "报名时间", "获得名额时间", "签到时间", "取消时间"]
    assert [row[:4] for row in rows[1:]] == [
        ["已获名额", "", "'=HYPERLINK(\"http://evil.example\",\"点我\")", "13800138002"],
        ["已获名额", "", "王芳", "13800138003"],  # promoted when 陈小明 cancelled
        ["候补中", "1", "'@SUM(1+1)", "13800138004"],
        ["已取消", "", "陈小明", "13800138001"],
    ]
    wang = rows[2]
    assert wang[4] == "短信"
    assert wang[5:] == ["2024-06-15T10:02:00+08:00", "2024-06-15T11:04:00+08:00", "2024-06-22T08:30:00+08:00", ""]
    assert rows[4][8] == "2024-06-15T11:04:00+08:00"
    english = read_csv(client.get(url(tour) + ".csv?lang=en"))
    assert english[0] == ["Status", "Waitlist position", "Name", "Phone", "Reminders by",
                          "Registered at", "Seated at", "Checked in at", "Cancelled at"]
    assert english[1][0] == "Seated" and english[3][0] == "Waitlisted" and english[2][4] == "Text message"


def test_csv_filename_of_an_awkward_title(client, city, clock):
    event = create_event(city["xinhui"], publish=True, title='a/b\\c:"d"\r\n<e>')
    signed_in(client, "editor", city["xinhui"])
    disposition = client.get(url(event) + ".csv?lang=en").headers["Content-Disposition"]
    assert disposition.isascii() and "\n" not in disposition
    assert unquote(disposition.split("UTF-8''", 1)[1]) == "a b c d e - Registrations.csv"
