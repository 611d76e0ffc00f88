"""The organizers' delivery log (/organizer/deliveries): what each role sees, the filters, replay.

Nothing is sent: reminders are turned into deliveries (``dispatch_due``) and the outcomes of
sending are written on the rows, as the sender would.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

from scheduler.privacy.notice import NOTICE_VERSION

from scheduler.auth.models import Role
from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.registrations.operations import register
from scheduler.reminders.dispatch import dispatch_due, queue_ping
from tests.factories import CST, create_city, create_event, create_user
from tests.outbox import deliveries, fresh, only
from tests.pages import html, session_token, signed_in

URL = "https://partner.example.org/hooks"



def log_ids(page: str, table: str = "deliveries") -> list[str]:
    """The delivery ids of the log table's rows, top to bottom."""
    match = re.search(rf'<table id="{table}".*?</table>', page, re.S)
    return re.findall(r'<tr data-id="([0-9A-Z]{26})">', match[0]) if match else []


def row_of(page: str, delivery_id: str) -> str:
    match = re.search(rf'<tr data-id="{delivery_id}">(.*?)</tr>', page, re.S)
    assert match, page
    return match[1]




@pytest.fixture
def city(ctx, clock):
    """Xinhui's study tour on 22 June 09:00 with a registrant (texts) and a webhook taking its reminders;
    Kaiping's tour with its own registrant (the webhook takes only Xinhui's events). On 19 June 09:00 the
    3-days-before reminders become deliveries."""
    orgs = create_city()
    tour = create_event(orgs["xinhui"], publish=True, capacity=5, title="新会研学")
    register(tour, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    other = create_event(orgs["kaiping"], publish=True, capacity=5, title="开平研学")
    register(other, name="李四", phone="13900139000", channels=["sms"], consent_version=NOTICE_VERSION)
    endpoint = WebhookEndpoint(org_id=orgs["xinhui"].id, url=URL, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                               kinds=[], org_ids=[orgs["xinhui"].id], types=["reminder.due"])
    db.session.add(endpoint)
    db.session.commit()
    clock.set(dt.datetime(2024, 6, 19, 9, 0, tzinfo=CST))
    dispatch_due()
    db.session.commit()
    return {**orgs, "tour": tour, "other": other, "endpoint": endpoint}


def dead_webhook_delivery(city):
    """The webhook's reminder delivery, given up after its retries."""
    delivery = only(endpoint_id=city["endpoint"].id)
    delivery.status, delivery.attempts = "dead", 8
    delivery.last_error, delivery.last_status_code = "The receiver answered 500.", 500
    db.session.commit()
    return delivery


def test_the_log_needs_a_signed_in_user(client, city):
    response = client.get("/organizer/deliveries")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_an_editor_sees_the_deliveries_of_their_organization_with_phones_masked(client, city):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    page = html(client.get("/organizer/deliveries"))
    assert "投递记录" in page
    ours = {d.id for d in deliveries(event_id=city["tour"].id)}
    assert len(ours) == 2 and set(log_ids(page)) == ours  # Kaiping's text is not shown
    assert "+86 138****8000" in page and "13800138000" not in page
    assert "13900139000" not in page and "139****9000" not in page
    sms = only(event_id=city["tour"].id, channel="sms")
    row = row_of(page, sms.id)
    assert "短信" in row and "提醒" in row and "待发送" in row
    assert f'href="/organizer/events/{city["tour"].id}">新会研学</a>' in row
    assert "2024年6月19日 09:00" in row  # created, in Shanghai time
    assert URL in row_of(page, only(endpoint_id=city["endpoint"].id).id)
    assert "重新投递" not in page  # both are still waiting to go


def test_the_log_in_english(client, city):
    signed_in(client, create_user(Role.VIEWER, city["xinhui"]))
    dead_webhook_delivery(city)
    page = html(client.get("/organizer/deliveries?lang=en"))
    assert "Delivery log" in page and '<html lang="en">' in page
    assert "+86 138****8000" in page and "13800138000" not in page
    row = row_of(page, only(endpoint_id=city["endpoint"].id).id)
    assert "Failed" in row and "The receiver answered 500." in row and "HTTP 500" in row
    assert "Jun 19, 2024" in row
    assert "Replay" not in page  # a viewer may not replay


def test_an_administrator_sees_every_organization(client, city):
    signed_in(client, create_user(None, admin=True))
    page = html(client.get("/organizer/deliveries"))
    assert len(log_ids(page)) == 3
    assert "+86 139****9000" in page


def test_filters(client, city):
    signed_in(client, create_user(Role.MANAGER, city["bureau"]))
    dead = dead_webhook_delivery(city)
    sms = {d.id for d in deliveries(channel="sms")}
    assert set(log_ids(html(client.get("/organizer/deliveries?channel=sms")))) == sms
    assert log_ids(html(client.get("/organizer/deliveries?status=dead"))) == [dead.id]
    assert log_ids(html(client.get(f"/organizer/deliveries?endpoint={city['endpoint'].id}"))) == [dead.id]
    by_event = html(client.get(f"/organizer/deliveries?event={city['other'].id}&type=reminder.due"))
    assert log_ids(by_event) == [only(event_id=city["other"].id).id]
    assert 'value="reminder.due" selected' in by_event
    assert log_ids(html(client.get("/organizer/deliveries?type=ping"))) == []
    bad = html(client.get("/organizer/deliveries?status=lost"), 400)
    assert "筛选条件无效" in bad and log_ids(bad) == []


def test_the_log_is_paged_fifty_at_a_time_keeping_the_filters(client, city):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    for _ in range(52):
        queue_ping(city["endpoint"])
    db.session.commit()
    first = html(client.get("/organizer/deliveries?type=ping"))
    assert len(log_ids(first)) == 50 and "第 1 / 2 页" in first
    assert 'href="/organizer/deliveries?type=ping&amp;page=2"' in first
    second = html(client.get("/organizer/deliveries?type=ping&page=2"))
    assert len(log_ids(second)) == 2 and not set(log_ids(second)) & set(log_ids(first))


def test_replay_of_a_dead_webhook_delivery_queues_it_again_with_the_same_id(client, city):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    dead = dead_webhook_delivery(city)
    page = html(client.get("/organizer/deliveries?status=dead"))
    row = row_of(page, dead.id)
    action = f"/organizer/deliveries/{dead.id}/replay?status=dead"
    assert f'action="{action}"' in row and ">重新投递</button>" in row
    response = client.post(action, data={"csrf_token": session_token(client, "/organizer/deliveries")})
    assert response.status_code == 303 and response.headers["Location"] == "/organizer/deliveries?status=dead"
    again = fresh(dead)
    assert (again.id, again.status, again.attempts, again.last_error) == (dead.id, "pending", 0, None)
    assert "已重新排队发送" in html(client.get(response.headers["Location"]))
    assert len(deliveries(endpoint_id=city["endpoint"].id)) == 1  # the same delivery, not a copy


def test_a_refused_replay_shows_the_reason(client, city, clock):
    editor = create_user(Role.EDITOR, city["xinhui"])
    signed_in(client, editor)
    csrf = session_token(client, "/organizer/deliveries")
    pending = only(event_id=city["tour"].id, channel="sms")
    response = client.post(f"/organizer/deliveries/{pending.id}/replay", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert "仍在投递中（待发送）" in html(client.get(response.headers["Location"]))
    assert fresh(pending).status == "pending"
    dead = dead_webhook_delivery(city)
    clock.set(dt.datetime(2024, 6, 22, 9, 30, tzinfo=CST))  # the tour has begun
    assert "Replay" not in row_of(html(client.get("/organizer/deliveries?lang=en")), dead.id)  # English from now on
    response = client.post(f"/organizer/deliveries/{dead.id}/replay", data={"csrf_token": csrf})
    assert response.status_code == 303
    page = html(client.get(response.headers["Location"]))
    assert "The moment this message was for has passed (the event has started)" in page
    assert fresh(dead).status == "dead"


def test_no_replay_while_the_endpoint_is_disabled(client, city):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    dead = dead_webhook_delivery(city)
    city["endpoint"].enabled = False
    db.session.commit()
    page = html(client.get("/organizer/deliveries"))
    assert "重新投递" not in row_of(page, dead.id)
    response = client.post(f"/organizer/deliveries/{dead.id}/replay", data={"csrf_token": session_token(client, "/organizer/deliveries")})
    assert "接口已停用" in html(client.get(response.headers["Location"]))
    assert fresh(dead).status == "dead"


def test_viewers_get_403_outsiders_404_and_no_token_400(client, app, city):
    dead = dead_webhook_delivery(city)
    path = f"/organizer/deliveries/{dead.id}/replay"
    signed_in(client, create_user(Role.VIEWER, city["xinhui"]))
    page = html(client.get("/organizer/deliveries"))
    assert dead.id in log_ids(page) and "重新投递" not in page
    assert client.post(path, data={"csrf_token": session_token(client, "/organizer/deliveries")}).status_code == 403
    outsider = signed_in(app.test_client(), create_user(Role.MANAGER, city["kaiping"]))
    page = html(outsider.get("/organizer/deliveries"))
    assert dead.id not in log_ids(page)
    assert outsider.post(path, data={"csrf_token": session_token(outsider, "/organizer/deliveries")}).status_code == 404
    editor = signed_in(app.test_client(), create_user(Role.EDITOR, city["xinhui"]))
    assert editor.post(path).status_code == 400  # no CSRF token
    assert fresh(dead).status == "dead"
    assert editor.post("/organizer/deliveries/nope/replay", data={"csrf_token": session_token(editor, "/organizer/deliveries")}).status_code == 404
