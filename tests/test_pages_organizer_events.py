"""The organizers' event pages: the events table, the form per kind (inline errors, the reminder
preview), an event's page with publish, cancel (who is told) and the outcome, and permissions."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from sqlalchemy import func, select

from scheduler.auth.models import Role
from scheduler.auth.operations import set_membership
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.sms.choices import record_choice
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.registrations.operations import register
from scheduler.reminders.models import Delivery, OutboxMessage
from scheduler.targets.operations import seed_city_targets
from tests.factories import CST, create_city, create_event, create_user
from tests.pages import csrf_token, fresh_token, sign_in


@pytest.fixture
def city(ctx):
    return create_city()


def html(response, status: int = 200) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:3000])
    return response.get_data(as_text=True)


def signed_in(client, role, org=None, **kwargs):
    user = create_user(role, org, **kwargs)
    assert sign_in(client, user.email).status_code == 302
    return user


def post(client, path: str, data: dict, form_page: str | None = None):
    """POST ``data`` with the CSRF token of the form at ``form_page`` (else of the events table)."""
    fresh_token()
    token = csrf_token(client.get(form_page or "/organizer/events"))
    return client.post(path, data={"csrf_token": token, **data})


def table_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-event="(\d+)">', page)]


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=CST)


TOUR_FORM = {
    "org": "xinhui", "title": "走进中微子实验室", "starts_at": "2024-07-06T08:30", "ends_at": "2024-07-06T17:00",
    "timezone": "Asia/Shanghai", "venue": "江门中微子实验室", "address": "开平市金鸡镇", "capacity": "2",
    "description": "参观地下实验大厅", "details.meeting_point": "江门市科技馆北门", "details.meeting_time": "2024-07-06T07:45",
    "details.age_min": "12", "details.age_max": "18",
    "details.itinerary": "08:00 | 江门市科技馆 | 集合出发\n\n10:30 | 江门中微子实验室 | 参观中心探测器\n五邑大学",
    "action": "save",
}


# --- the table --------------------------------------------------------------------------------------

def test_the_table_needs_a_signed_in_user(client, city):
    response = client.get("/organizer/events")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_table_shows_the_users_organizations_drafts_included_with_filters(client, city):
    ours = create_event(city["xinhui"], publish=True, capacity=2, title="新会研学")
    draft = create_event(city["xinhui"], title="新会草稿", starts_at=at(7, 6), ends_at=at(7, 6, 12))
    fair = create_event(city["xinhui"], publish=True, kind="matchmaking", title="邑科汇·新能源", details={"sector": "new_energy"},
                        starts_at=at(5, 18), ends_at=at(5, 18, 17))
    theirs = create_event(city["kaiping"], title="开平草稿")
    create_event(city["kaiping"], publish=True, title="开平研学")
    for n in range(3):
        register(ours, name="陈小明", phone=f"1380013800{n}", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get("/organizer/events"))
    assert table_ids(page) == [fair.id, ours.id, draft.id]  # in time order; Kaiping's are not theirs
    assert "开平" not in page and str(theirs.id) not in re.findall(r'data-event="(\d+)"', page)
    row = re.search(rf'<tr data-event="{ours.id}">(.*?)</tr>', page, re.S)[1]
    assert f'href="/organizer/events/{ours.id}"' in row and "科普研学游" in row and "已发布" in row
    assert '<td class="seats">2 / 2</td>' in row and '<td class="waitlist">1</td>' in row
    assert "2024年6月22日 09:00" in row
    assert "草稿" in re.search(rf'<tr data-event="{draft.id}">(.*?)</tr>', page, re.S)[1]
    # a "New event" link per kind, for someone who may create events
    assert len(re.findall(r'href="/organizer/events/new\?kind=\w+"', page)) == 5
    for name in ("kind", "status", "org", "month", "q"):
        assert f'<label for="filter-{name}">' in page
    assert '<div class="table-scroll">' in page
    # the filters
    assert table_ids(html(client.get("/organizer/events?status=draft"))) == [draft.id]
    assert table_ids(html(client.get("/organizer/events?kind=matchmaking"))) == [fair.id]
    assert table_ids(html(client.get("/organizer/events?month=2024-07"))) == [draft.id]
    assert table_ids(html(client.get("/organizer/events?q=草稿"))) == [draft.id]
    assert table_ids(html(client.get("/organizer/events?org=xinhui&kind=&status="))) == [fair.id, ours.id, draft.id]
    assert table_ids(html(client.get("/organizer/events?status=cancelled"))) == []
    assert client.get("/organizer/events?org=kaiping").status_code == 403
    assert "无效" in html(client.get("/organizer/events?org=atlantis"), 400)
    assert client.get("/organizer/events?month=2024-13").status_code == 400


def test_the_table_in_english_and_for_an_administrator(client, city):
    create_event(city["xinhui"], title="新会草稿")
    create_event(city["kaiping"], title="开平草稿")
    signed_in(client, None, admin=True)
    page = html(client.get("/organizer/events?lang=en"))
    assert "新会草稿" in page and "开平草稿" in page
    assert "Draft" in page and "Science study tour" in page and "New event:" in page and "Seats taken" in page
    assert 'aria-current="page">Events</a>' in page


def test_table_pages_by_twenty(client, city):
    for day in range(1, 23):
        create_event(city["xinhui"], starts_at=at(7, day), ends_at=at(7, day, 12))
    signed_in(client, "viewer", city["xinhui"])
    first = html(client.get("/organizer/events"))
    assert len(table_ids(first)) == 20 and 'rel="next"' in first
    assert "new?kind=" not in first  # a viewer creates nothing
    second = html(client.get("/organizer/events?page=2"))
    assert len(table_ids(second)) == 2 and 'rel="prev"' in second


# --- permissions ------------------------------------------------------------------------------------

def test_viewer_sees_no_buttons_and_is_refused_every_change(client, city):
    draft = create_event(city["xinhui"], title="新会草稿")
    past = create_event(city["xinhui"], publish=True, kind="matchmaking", details={"sector": "new_energy"},
                        starts_at=at(5, 18), ends_at=at(5, 18, 17))
    signed_in(client, "viewer", city["xinhui"])
    for event in (draft, past):
        page = html(client.get(f"/organizer/events/{event.id}"))
        for button in ('id="publish"', 'id="cancel-event"', 'id="edit"', 'id="record-outcome"'):
            assert button not in page
        assert f'href="/organizer/events/{event.id}/registrations"' in page
        assert f'href="/organizer/deliveries?event={event.id}"' in page
    assert client.get(f"/organizer/events/{draft.id}/edit").status_code == 403
    assert client.get(f"/organizer/events/{draft.id}/cancel").status_code == 403
    assert client.get(f"/organizer/events/{past.id}/outcome").status_code == 403
    assert client.get("/organizer/events/new?kind=study_tour").status_code == 403
    assert post(client, f"/organizer/events/{draft.id}/publish", {}).status_code == 403
    assert post(client, f"/organizer/events/{draft.id}/cancel", {"reason": "x"}).status_code == 403
    assert post(client, f"/organizer/events/{draft.id}/edit", {**TOUR_FORM, "title": "改"}).status_code == 403
    assert post(client, f"/organizer/events/{past.id}/outcome", {"attendance": "5"}).status_code == 403
    assert post(client, "/organizer/events/new?kind=study_tour", TOUR_FORM).status_code == 403
    db.session.expire_all()
    assert db.session.get(Event, draft.id).status == "draft" and db.session.get(Event, draft.id).title == "新会草稿"
    assert db.session.get(Event, past.id).outcome is None


def test_other_organizations_events_are_hidden_or_forbidden(client, city):
    their_draft = create_event(city["kaiping"])
    their_event = create_event(city["kaiping"], publish=True)
    signed_in(client, "editor", city["xinhui"])
    assert client.get(f"/organizer/events/{their_draft.id}").status_code == 404  # as the API: drafts of others do not exist
    assert client.get(f"/organizer/events/{their_event.id}").status_code == 403
    assert client.get(f"/organizer/events/{their_event.id}/edit").status_code == 403
    assert post(client, f"/organizer/events/{their_draft.id}/publish", {}).status_code == 404
    assert client.get("/organizer/events/999999").status_code == 404
    # and an event cannot be moved into an organization where the user is not an editor
    ours = create_event(city["xinhui"])
    assert post(client, f"/organizer/events/{ours.id}/edit", {**TOUR_FORM, "org": "kaiping"},
                f"/organizer/events/{ours.id}/edit").status_code == 403


def test_csrf_token_is_required(client, city):
    draft = create_event(city["xinhui"])
    signed_in(client, "editor", city["xinhui"])
    assert client.post("/organizer/events/new?kind=study_tour", data=TOUR_FORM).status_code == 400
    assert client.post(f"/organizer/events/{draft.id}/publish").status_code == 400
    assert client.post(f"/organizer/events/{draft.id}/cancel", data={"reason": "台风"}).status_code == 400
    assert client.post(f"/organizer/events/{draft.id}/edit", data=TOUR_FORM).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1
    db.session.expire_all()
    assert db.session.get(Event, draft.id).status == "draft"


# --- the form ---------------------------------------------------------------------------------------

def test_a_study_tour_made_with_the_form_and_published_is_in_the_public_list(client, city):
    signed_in(client, "editor", city["xinhui"])
    form = html(client.get("/organizer/events/new?kind=study_tour"))
    for label in ("标题", "开始", "结束", "名额", "集合地点", "最小年龄", "行程"):
        assert label in form
    for field in ("title", "starts_at", "ends_at", "capacity", "details-meeting_point", "details-itinerary"):
        assert f'<label for="f-{field}">' in form
    assert 'id="save"' in form and 'id="preview"' in form and 'value="xinhui"' in form and 'value="kaiping"' not in form
    response = post(client, "/organizer/events/new?kind=study_tour", TOUR_FORM, "/organizer/events/new?kind=study_tour")
    assert response.status_code == 303
    event = db.session.scalar(select(Event).where(Event.title == "走进中微子实验室"))
    assert response.headers["Location"] == f"/organizer/events/{event.id}"
    assert event.status == "draft" and event.capacity == 2 and event.org.slug == "xinhui"
    assert event.starts_at == at(7, 6, 8, 30) and event.ends_at == at(7, 6, 17)
    assert event.details == {
        "meeting_point": "江门市科技馆北门", "meeting_time": "2024-07-06T07:45:00+08:00", "age_min": 12, "age_max": 18,
        "itinerary": [{"time": "08:00", "place": "江门市科技馆", "note": "集合出发"},
                      {"time": "10:30", "place": "江门中微子实验室", "note": "参观中心探测器"}, {"place": "五邑大学"}],
    }
    assert event.reminder_offsets is None  # the kind's default plan
    page = html(client.get(response.headers["Location"]))
    assert "已保存" in page and 'id="publish"' in page and "草稿" in page
    assert f'/events/{event.id}"' not in page  # a draft has no public page yet
    assert str(event.id) not in " ".join(re.findall(r'href="/events/(\d+)"', html(client.get("/events"))))
    published = post(client, f"/organizer/events/{event.id}/publish", {}, f"/organizer/events/{event.id}")
    assert published.status_code == 303 and published.headers["Location"] == f"/organizer/events/{event.id}"
    page = html(client.get(f"/organizer/events/{event.id}"))
    assert "已发布" in page and 'id="publish"' not in page and f'href="/events/{event.id}"' in page
    assert f'<h3><a href="/events/{event.id}">走进中微子实验室</a></h3>' in html(client.get("/events"))
    public = html(client.get(f"/events/{event.id}"))
    assert "剩余名额：2 / 共 2 个" in public and "江门市科技馆北门" in public and "12至18岁" in public
    assert "<li>10:30 江门中微子实验室 — 参观中心探测器</li>" in public


def test_the_form_refuses_what_the_api_refuses_next_to_the_fields(client, city):
    signed_in(client, "editor", city["xinhui"])
    path = "/organizer/events/new?kind=study_tour"
    bad = {**TOUR_FORM, "ends_at": "2024-07-06T07:00", "details.age_min": "18", "details.age_max": "12",
           "details.itinerary": "08:00 | 江门市科技馆\n\n25:99 | 江门中微子实验室"}
    page = html(post(client, path, bad, path), 422)
    assert re.search(r'<textarea id="f-details-itinerary" name="details.itinerary" rows="6"[^>]*aria-invalid="true"', page)
    assert 'id="f-ends_at-error">结束时间必须晚于开始时间。</strong>' in page
    assert 'id="f-details-age_min-error">最小年龄不能大于最大年龄。</strong>' in page
    assert 'id="f-details-itinerary-error">第3行：' in page and "HH:MM" in page
    assert 'aria-describedby="f-ends_at-help f-ends_at-error" aria-invalid="true"' in page
    assert 'value="走进中微子实验室"' in page and "25:99 | 江门中微子实验室</textarea>" in page  # kept as typed
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
    page = html(post(client, path + "&lang=en", {**bad, "details.itinerary": "a | b | c | d", "title": " "}, path), 422)
    assert "The end must come after the start." in page and "The minimum age must not be above the maximum age." in page
    assert "Line 1: write time | place | note (three parts at most)" in page
    assert "Give a title (at most 200 characters)." in page and "Please correct the fields marked below." in page
    page = html(post(client, path, {**TOUR_FORM, "details.meeting_point": "", "capacity": "lots", "reminders": "3d\nsoon",
                                    "timezone": "Mars/Olympus"}, path), 422)
    assert "Give the meeting point (at most 200 characters)." in page and "Give a time zone such as Asia/Shanghai." in page
    assert "Give the number of seats (0 to 1,000,000), or leave it empty for no limit." in page
    assert "Line 2: write a reminder as 3d, 2h or 30m" in page


def test_an_all_day_event_is_entered_by_its_days(client, city):
    signed_in(client, "editor", city["xinhui"])
    path = "/organizer/events/new?kind=science_carnival"
    response = post(client, path, {"org": "xinhui", "title": "嘉年华", "starts_at": "2024-10-01T00:00", "ends_at": "2024-10-03T00:00",
                                   "all_day": "y", "timezone": "Asia/Shanghai", "action": "save"}, path)
    assert response.status_code == 303
    event = db.session.scalar(select(Event))
    assert event.all_day and event.starts_at == at(10, 1, 0) and event.ends_at == at(10, 4, 0)  # the 3rd is the last day
    page = html(client.get(f"/organizer/events/{event.id}/edit"))
    assert 'name="starts_at" value="2024-10-01T00:00"' in page and 'name="ends_at" value="2024-10-03T00:00"' in page
    assert 'name="all_day" value="y" checked' in page


def test_the_form_of_each_kind_has_its_own_fields_and_saves_them(client, city):
    signed_in(client, "editor", city["xinhui"])
    common = {"org": "xinhui", "starts_at": "2024-09-20T09:00", "ends_at": "2024-09-20T17:00", "timezone": "Asia/Shanghai",
              "action": "save"}
    forms = {
        "matchmaking": {"details.sector": "new_energy", "details.partners": "五邑大学\n江门双碳实验室",
                        "details.achievements_planned": "20", "reminders": "3d\n2小时"},
        "contest": {"details.registration_deadline": "2024-09-01T17:00", "details.final_at": "2024-09-20T09:00",
                    "details.tracks": "智能制造\n新能源"},
        "tech_week": {"details.theme": "热爱科学", "details.sessions": "2024-09-20 09:00-11:30 | 开幕式 | 江门市科技馆 | 蓬江区"},
        "science_carnival": {"details.theme": "科技点亮生活", "details.booths": "40", "details.audience": "亲子家庭",
                             "no_reminders": "y"},
    }
    for kind, fields in forms.items():
        path = f"/organizer/events/new?kind={kind}"
        response = post(client, path, {**common, "title": kind, **fields}, path)
        assert response.status_code == 303, html(response, 303)
    saved = {e.kind: e for e in db.session.scalars(select(Event))}
    assert saved["matchmaking"].details == {"sector": "new_energy", "partners": ["五邑大学", "江门双碳实验室"], "achievements_planned": 20}
    assert saved["matchmaking"].reminder_offsets == ["P3D", "PT2H"]
    assert saved["contest"].details == {"registration_deadline": "2024-09-01T17:00:00+08:00", "final_at": "2024-09-20T09:00:00+08:00",
                                        "tracks": ["智能制造", "新能源"]}
    assert saved["tech_week"].details["sessions"] == [{
        "title": "开幕式", "starts_at": "2024-09-20T09:00:00+08:00", "ends_at": "2024-09-20T11:30:00+08:00",
        "venue": "江门市科技馆", "county": "pengjiang"}]
    assert saved["science_carnival"].reminder_offsets == [] and saved["science_carnival"].details["booths"] == 40
    # the edit form shows what was saved, as it was typed
    page = html(client.get(f"/organizer/events/{saved['tech_week'].id}/edit"))
    assert "2024-09-20 09:00-11:30 | 开幕式 | 江门市科技馆 | pengjiang</textarea>" in page
    page = html(client.get(f"/organizer/events/{saved['matchmaking'].id}/edit"))
    assert '<option value="new_energy" selected>' in page and "3d\n2h</textarea>" in page
    assert 'value="2024-09-20T09:00"' in page
    # the kind in the URL must be one of the five
    assert client.get("/organizer/events/new?kind=party").status_code == 404
    path = "/organizer/events/new?kind=contest"
    page = html(post(client, path, {**common, "title": "杯", "details.registration_deadline": "2024-09-21T17:00",
                                    "details.final_at": "2024-09-20T09:00"}, path), 422)
    assert "各阶段的顺序" in page


def test_preview_shows_the_schedule_with_quiet_hours_and_the_text(client, city):
    signed_in(client, "editor", city["xinhui"])
    path = "/organizer/events/new?kind=matchmaking"
    form = {"org": "xinhui", "title": "邑科汇·新能源专场", "starts_at": "2024-07-06T08:30", "ends_at": "2024-07-06T12:00",
            "timezone": "Asia/Shanghai", "venue": "江门市科技馆", "details.sector": "new_energy", "action": "preview"}
    page = html(post(client, path, form, path))
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0  # nothing saved
    preview = re.search(r'<section aria-labelledby="preview-heading".*?</section>', page, re.S)[0]
    rows = re.findall(r"<tr[^>]*>\s*<th scope=\"row\">(.*?)</th>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", preview, re.S)
    assert [re.sub(r"<[^>]+>", "", cell).strip() for cell in rows[0]] == ["开始前7天", "2024年6月29日 08:30", "2024年6月29日 08:30"]
    assert "2024年7月5日 08:30" in rows[1][1]
    # two hours before an 08:30 start is 06:30, in the quiet hours; 08:00 would be too close: 20:59 the evening before
    assert "开始前2小时" in rows[2][0] and "2024年7月6日 06:30" in rows[2][1]
    assert "2024年7月5日 20:59" in rows[2][2] and "免打扰" in rows[2][2]
    text = re.search(r'<blockquote class="sms" lang="zh-CN">(.*?)</blockquote>', preview, re.S)[1]
    assert text.startswith("【江门科技】您报名的“邑科汇·新能源专场”将于7月6日 08:30开始，地点：江门市科技馆。管理提醒：http://scheduler.test/m/")
    length = len(text.replace("&amp;", "&"))
    assert f"{length}个字符，计费2条" in preview  # Chinese: 67 characters a segment beyond 70
    # own offsets, in English
    page = html(post(client, path + "&lang=en", {**form, "reminders": "1d 12h"}, path))
    assert "1 day 12 hours before the start" in page and "Jul 4, 2024, 8:30" in page.replace("\u202f", " ")
    assert "billed segments" in page and "The reminders given in the form." in page
    # a preview of an invalid form shows the errors instead
    page = html(post(client, path + "&lang=zh", {**form, "details.sector": ""}, path), 422)
    assert 'id="f-details-sector-error">请选择领域。' in page and "preview-heading" not in page


def test_preview_of_a_contest_has_the_deadline_reminders(client, city, clock):
    signed_in(client, "editor", city["xinhui"])
    path = "/organizer/events/new?kind=contest"
    form = {"org": "xinhui", "title": "科技杯", "starts_at": "2024-09-20T09:00", "timezone": "Asia/Shanghai",
            "details.registration_deadline": "2024-09-01T17:00", "details.final_at": "2024-09-20T09:00", "action": "preview"}
    page = html(post(client, path, form, path))
    assert "报名截止前3天" in page and "2024年8月29日 17:00" in page
    assert "决赛前1天" in page and "2024年9月19日 09:00" in page
    # the texts name the stage and its moment, not the contest's start
    assert "您报名的“科技杯”报名截止时间：9月1日 17:00，请留意。" in page
    clock.set(at(8, 30, 12))  # the first reminder's moment has passed
    page = html(post(client, path, form, path))
    assert "已过：不会发送" in page


def test_editing_a_published_event_tells_partners_and_participants(client, city):
    event = create_event(city["xinhui"], publish=True, capacity=10)
    db.session.add(WebhookEndpoint(org_id=city["xinhui"].id, url="https://partner.example/hook", secret="whsec_x"))
    register(event, name="陈小明", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    path = f"/organizer/events/{event.id}/edit"
    page = html(client.get(path))
    assert 'value="2024-06-22T09:00"' in page and 'value="江门市科技馆北门"' in page and 'value="10"' in page
    form = {key: value for key, value in re.findall(r'<input type="(?:text|datetime-local)"[^>]* name="([^"]+)" value="([^"]*)"', page)}
    form |= {"org": "xinhui", "details.itinerary": "", "description": "", "reminders": "", "action": "save"}
    response = post(client, path, {**form, "starts_at": "2024-06-23T09:00", "ends_at": "2024-06-23T12:00"}, path)
    assert response.status_code == 303 and response.headers["Location"] == f"/organizer/events/{event.id}"
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert event.starts_at == at(6, 23) and event.sequence == 2  # published (1), moved (2)
    updated = db.session.scalars(select(OutboxMessage).where(OutboxMessage.type == "event.updated")).all()
    assert len(updated) == 2  # one for the partners, one for the participants' texts
    kinds = {d.channel for d in db.session.scalars(select(Delivery).where(Delivery.type == "event.updated"))}
    assert kinds == {"webhook", "sms"}
    assert "已保存" in html(client.get(f"/organizer/events/{event.id}"))


def test_a_cancelled_event_is_not_edited(client, city):
    from scheduler.events import operations

    event = create_event(city["xinhui"], publish=True)
    operations.cancel_event(event, "台风")
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    page = html(client.get(f"/organizer/events/{event.id}/edit"), 409)
    assert "已取消或已结束的活动不能编辑" in page and 'id="save"' not in page
    assert post(client, f"/organizer/events/{event.id}/edit", TOUR_FORM).status_code == 409
    page = html(client.get(f"/organizer/events/{event.id}"))
    assert "已取消：台风" in page and 'id="edit"' not in page and 'id="cancel-event"' not in page


# --- cancelling -------------------------------------------------------------------------------------

def test_cancel_confirmation_counts_who_is_told_and_cancelling_tells_them(client, city):
    event = create_event(city["xinhui"], publish=True, capacity=3, title="新会研学")
    seated, _ = register(event, name="甲", phone="13800138001", channels=["sms"], consent_version=NOTICE_VERSION)
    stopped, _ = register(event, name="乙", phone="13800138002", channels=["sms"], consent_version=NOTICE_VERSION)
    register(event, name="丙", phone="13800138003", channels=[], consent_version=NOTICE_VERSION)
    waiting, _ = register(event, name="丁", phone="13800138004", channels=["sms"], consent_version=NOTICE_VERSION)
    record_choice("+8613800138002", True, "reply", "TD")
    hooks = [
        WebhookEndpoint(org_id=city["xinhui"].id, url="https://a.example/hook", secret="whsec_a"),
        WebhookEndpoint(org_id=city["bureau"].id, url="https://b.example/hook", secret="whsec_b", org_ids=[city["xinhui"].id],
                        types=["event.cancelled"]),
        WebhookEndpoint(org_id=city["bureau"].id, url="https://c.example/hook", secret="whsec_c", kinds=["matchmaking"]),
        WebhookEndpoint(org_id=city["bureau"].id, url="https://d.example/hook", secret="whsec_d", enabled=False),
        WebhookEndpoint(org_id=city["bureau"].id, url="https://e.example/hook", secret="whsec_e", types=["reminder.due"]),
    ]
    db.session.add_all(hooks)
    db.session.commit()
    signed_in(client, "editor", city["xinhui"])
    assert 'id="cancel-event"' in html(client.get(f"/organizer/events/{event.id}"))
    path = f"/organizer/events/{event.id}/cancel"
    page = html(client.get(path))
    assert '<dd id="told-seated">1</dd>' in page and '<dd id="told-waitlisted">1</dd>' in page
    assert '<dd id="told-endpoints">2</dd>' in page and '<dd id="not-told">2</dd>' in page
    assert "1 位已占名额的报名者和 1 位候补者将收到短信" in page
    assert '<label for="reason">' in page
    # the reason is required
    page = html(post(client, path, {"reason": "  "}, path), 422)
    assert 'aria-invalid="true"' in page and 'id="reason-error"' in page and "请填写原因" in page
    page = html(post(client, path + "?lang=en", {"reason": ""}, path), 422)
    assert "Give the reason (at most 500 characters): participants will read it." in page
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == "published"
    response = post(client, path + "?lang=zh", {"reason": "台风预警，活动取消"}, path)
    assert response.status_code == 303 and response.headers["Location"] == f"/organizer/events/{event.id}"
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == "cancelled"
    cancelled = db.session.scalars(select(Delivery).where(Delivery.type == "event.cancelled")).all()
    assert {d.endpoint_id for d in cancelled if d.endpoint_id} == {hooks[0].id, hooks[1].id}
    texts = {d.registration_id for d in cancelled if d.channel == "sms"}
    assert {seated.id, waiting.id} <= texts and len(texts) == 3  # the opted-out number's text is dropped when sent
    page = html(client.get(f"/organizer/events/{event.id}"))
    assert "活动已取消" in page and "已取消：台风预警，活动取消" in page
    assert client.get(path).status_code == 409


def test_cancelling_a_draft_tells_nobody(client, city):
    draft = create_event(city["xinhui"])
    signed_in(client, None, admin=True)
    path = f"/organizer/events/{draft.id}/cancel?lang=en"
    assert "The event is a draft: nobody has registered and nobody is told." in html(client.get(path))
    assert post(client, path, {"reason": "Merged with another tour"}, path).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


# --- outcomes ---------------------------------------------------------------------------------------

def achieved(page: str, key: str) -> int:
    block = re.search(rf'<li class="target" data-key="{key}">(.*?)</li>', page, re.S)[1]
    return int(re.search(r'class="achieved">(\d+)<', block)[1])


def test_outcome_of_a_past_fair_counts_on_the_dashboard(client, city):
    seed_city_targets(2024)
    fair = create_event(city["xinhui"], publish=True, kind="matchmaking", title="邑科汇·智能装备",
                        details={"sector": "intelligent_equipment"}, starts_at=at(5, 18), ends_at=at(5, 18, 17))
    signed_in(client, "editor", city["xinhui"])
    assert achieved(html(client.get("/organizer")), "achievements_matched") == 0
    page = html(client.get(f"/organizer/events/{fair.id}"))
    assert 'id="record-outcome"' in page
    path = f"/organizer/events/{fair.id}/outcome"
    form = html(client.get(path + "?lang=en"))
    for label in ("Attendance", "Achievements presented", "Achievements matched", "Achievements commercialized", "Notes"):
        assert label in form
    page = html(post(client, path + "?lang=zh", {"attendance": "120", "achievements_presented": "5", "achievements_matched": "9",
                                    "achievements_commercialized": "", "notes": ""}, path), 422)
    assert 'id="outcome-achievements_matched-error">对接成功的成果多于发布的成果。' in page
    response = post(client, path, {"attendance": "120", "achievements_presented": "12", "achievements_matched": "7",
                                   "achievements_commercialized": "2", "notes": "签约3项"}, path)
    assert response.status_code == 303
    db.session.expire_all()
    fair = db.session.get(Event, fair.id)
    assert fair.status == "completed" and fair.outcome.achievements_matched == 7
    page = html(client.get(f"/organizer/events/{fair.id}"))
    assert '<dd data-outcome="achievements_matched">7</dd>' in page and "已结束" in page and "签约3项" in page
    assert achieved(html(client.get("/organizer")), "achievements_matched") == 7
    assert achieved(html(client.get("/organizer")), "achievements_commercialized") == 2
    assert 'value="7"' in html(client.get(path))  # the form shows what was recorded


def test_outcome_is_refused_before_the_event_and_for_a_study_tour_has_no_achievements(client, city):
    future = create_event(city["xinhui"], publish=True, kind="matchmaking", details={"sector": "new_energy"},
                          starts_at=at(9, 20), ends_at=at(9, 20, 17))
    signed_in(client, "editor", city["xinhui"])
    assert 'id="record-outcome"' not in html(client.get(f"/organizer/events/{future.id}"))
    path = f"/organizer/events/{future.id}/outcome"
    page = html(client.get(path), 409)
    assert "活动尚未举行" in page and "<form" not in page.split("<main>")[1]
    assert "has not taken place yet" in html(client.get(path + "?lang=en"), 409)
    assert post(client, path, {"attendance": "10"}, f"/organizer/events/{future.id}").status_code == 409
    db.session.expire_all()
    assert db.session.get(Event, future.id).outcome is None
    tour = create_event(city["xinhui"], publish=True, starts_at=at(5, 18), ends_at=at(5, 18, 12))
    form = html(client.get(f"/organizer/events/{tour.id}/outcome"))
    assert 'name="attendance"' in form and "achievements_matched" not in form
    assert post(client, f"/organizer/events/{tour.id}/outcome", {"attendance": "30", "notes": ""},
                f"/organizer/events/{tour.id}/outcome").status_code == 303


def test_an_editor_of_the_bureau_manages_county_events(client, city):
    draft = create_event(city["kaiping"], title="开平草稿")
    user = signed_in(client, "viewer", city["xinhui"])
    set_membership(user, city["bureau"], Role.EDITOR)
    db.session.commit()
    page = html(client.get("/organizer/events"))
    assert draft.id in table_ids(page)
    assert 'id="publish"' in html(client.get(f"/organizer/events/{draft.id}"))
