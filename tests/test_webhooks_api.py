"""Webhook endpoints, the delivery log and alerts through the API: who may do what, and what they see."""
from __future__ import annotations

import datetime as dt

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from sqlalchemy import select

from scheduler.alerts.operations import raise_alert
from scheduler.auth.models import Role
from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.registrations.operations import register
from scheduler.reminders import dispatch, sender
from scheduler.reminders.models import Delivery
from tests.factories import CST, auth, create_city, create_event, create_user

URL = "https://partner.example.org/hooks"


@pytest.fixture
def city(ctx):
    return create_city()


def _create(client, headers, **body):
    return client.post("/api/v1/webhooks", json={"url": URL, **body}, headers=headers)


def test_an_editor_creates_an_endpoint_and_sees_its_secret_once(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    response = _create(client, auth(editor), kinds=["study_tour"], orgs=["xinhui"], types=["reminder.due"])
    assert response.status_code == 201, response.json
    created = response.json
    assert created["secret"].startswith("whsec_") and created["org"] == "xinhui"
    assert (created["kinds"], created["orgs"], created["types"]) == (["study_tour"], ["xinhui"], ["reminder.due"])
    assert created["health"]["consecutive_failures"] == 0 and created["enabled"] is True
    listed = client.get("/api/v1/webhooks", headers=auth(editor)).json["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "secret" not in listed[0]


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://localhost:8080/",
    "http://100.64.0.1/", "ftp://partner.example.org/", "https://user:pw@partner.example.org/", "not a url",
])
def test_an_address_that_is_not_public_is_refused_at_once(client, city, url):
    editor = create_user(Role.EDITOR, city["xinhui"])
    response = client.post("/api/v1/webhooks", json={"url": url}, headers=auth(editor))
    assert response.status_code == 422, response.json
    assert "url" in response.json["error"]["fields"]
    assert db.session.scalar(select(WebhookEndpoint.id)) is None


def test_the_allow_list_opens_an_intranet_address(app, client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    app.config["OUTBOUND_ALLOWLIST"] = ["10.0.0.0/8"]
    try:
        assert _create(client, auth(editor), url="http://10.1.2.3/hook").status_code == 201
    finally:
        app.config["OUTBOUND_ALLOWLIST"] = []


def test_permissions_follow_the_organization_tree(client, city):
    viewer = create_user(Role.VIEWER, city["xinhui"])
    outsider = create_user(Role.EDITOR, city["kaiping"])
    manager = create_user(Role.MANAGER, city["bureau"])
    assert client.post("/api/v1/webhooks", json={"url": URL}).status_code == 401
    assert _create(client, auth(viewer)).status_code == 403
    created = _create(client, auth(manager), org="xinhui").json
    path = f"/api/v1/webhooks/{created['id']}"
    assert client.get(path, headers=auth(viewer)).status_code == 200  # viewers see health
    assert client.patch(path, json={"description": "x"}, headers=auth(viewer)).status_code == 403
    assert client.get(path, headers=auth(outsider)).status_code == 404  # another county's endpoint does not exist for you
    assert client.delete(path, headers=auth(outsider)).status_code == 404
    assert client.get("/api/v1/webhooks", headers=auth(outsider)).json["items"] == []
    assert client.delete(path, headers=auth(manager)).status_code == 204
    assert client.get(path, headers=auth(manager)).status_code == 404


def test_owner_must_be_named_when_ambiguous_and_filters_must_exist(client, city):
    admin = create_user(admin=True)
    response = _create(client, auth(admin))
    assert response.status_code == 422 and "org" in response.json["error"]["fields"]
    editor = create_user(Role.EDITOR, city["xinhui"])
    response = _create(client, auth(editor), orgs=["nowhere"])
    assert response.status_code == 422 and "orgs" in response.json["error"]["fields"]
    response = _create(client, auth(editor), types=["event.deleted"])
    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["types.0"]


def test_rotation_returns_a_new_secret_and_keeps_the_old_one_for_a_day(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    created = _create(client, auth(editor)).json
    response = client.post(f"/api/v1/webhooks/{created['id']}/rotate", headers=auth(editor))
    assert response.status_code == 200
    assert response.json["secret"] != created["secret"]
    assert dt.datetime.fromisoformat(response.json["previous_secret_valid_until"]) == dt.datetime(2024, 6, 16, 10, tzinfo=CST)
    row = db.session.get(WebhookEndpoint, created["id"])
    assert (row.secret, row.previous_secret) == (response.json["secret"], created["secret"])


def test_disable_and_enable_again_clears_the_failures(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    created = _create(client, auth(editor)).json
    row = db.session.get(WebhookEndpoint, created["id"])
    row.consecutive_failures, row.failing_since = 7, dt.datetime(2024, 6, 14, tzinfo=CST)
    db.session.commit()
    path = f"/api/v1/webhooks/{created['id']}"
    off = client.patch(path, json={"enabled": False}, headers=auth(editor)).json
    assert off["enabled"] is False and off["health"]["disabled_reason"]
    assert client.post(f"{path}/test", headers=auth(editor)).status_code == 409
    on = client.patch(path, json={"enabled": True}, headers=auth(editor)).json
    assert on["enabled"] is True and on["health"]["consecutive_failures"] == 0 and on["health"]["disabled_reason"] is None


def test_a_ping_is_queued_and_shows_in_the_log(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    created = _create(client, auth(editor)).json
    response = client.post(f"/api/v1/webhooks/{created['id']}/test", headers=auth(editor))
    assert response.status_code == 202
    log = client.get(f"/api/v1/deliveries?endpoint={created['id']}", headers=auth(editor)).json
    assert [(d["id"], d["type"], d["status"], d["recipient"]) for d in log["items"]] == [
        (response.json["delivery_id"], "ping", "pending", URL)
    ]


def _sent_reminder(city):
    """A published study tour (22 June 09:00) with one registrant and one endpoint for its reminders."""
    event = create_event(city["xinhui"], publish=True, capacity=5)
    register(event, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    endpoint = WebhookEndpoint(org_id=city["xinhui"].id, url=URL, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                               kinds=[], org_ids=[], types=["reminder.due"])
    db.session.add(endpoint)
    db.session.commit()
    return event, endpoint


def test_the_log_filters_masks_phones_and_hides_other_counties(client, city, clock):
    event, endpoint = _sent_reminder(city)
    clock.set(dt.datetime(2024, 6, 19, 9, 0, tzinfo=CST))  # the tour's 3-days-before reminder
    dispatch.dispatch_due()
    db.session.commit()
    editor = create_user(Role.EDITOR, city["xinhui"])
    log = client.get(f"/api/v1/deliveries?event={event.id}&type=reminder.due", headers=auth(editor)).json
    by_channel = {d["channel"]: d for d in log["items"]}
    assert set(by_channel) == {"webhook", "sms"}
    assert by_channel["sms"]["recipient"] == "+86 138****8000"
    assert by_channel["webhook"]["reminder"]["offset"] == "P3D"
    only_sms = client.get("/api/v1/deliveries?channel=sms", headers=auth(editor)).json
    assert [d["channel"] for d in only_sms["items"]] == ["sms"]
    outsider = create_user(Role.MANAGER, city["kaiping"])
    assert client.get("/api/v1/deliveries", headers=auth(outsider)).json["total"] == 0
    bad = client.get("/api/v1/deliveries?status=lost", headers=auth(editor))
    assert bad.status_code == 422


def test_replay_sends_again_with_the_same_key(client, city, clock):
    event, endpoint = _sent_reminder(city)
    clock.set(dt.datetime(2024, 6, 19, 9, 0, tzinfo=CST))  # the tour's 3-days-before reminder
    dispatch.dispatch_due()
    db.session.commit()
    sms = db.session.scalar(select(Delivery).where(Delivery.channel == "sms"))
    editor = create_user(Role.EDITOR, city["xinhui"])
    assert client.post(f"/api/v1/deliveries/{sms.id}/replay", headers=auth(editor)).status_code == 409  # still pending
    sender.run_once()
    db.session.expire_all()
    assert db.session.get(Delivery, sms.id).status == "sent"
    viewer = create_user(Role.VIEWER, city["xinhui"])
    assert client.post(f"/api/v1/deliveries/{sms.id}/replay", headers=auth(viewer)).status_code == 403
    response = client.post(f"/api/v1/deliveries/{sms.id}/replay", headers=auth(editor))
    assert response.status_code == 202 and response.json == {"delivery_id": sms.id, "status": "pending"}
    sender.run_once()
    db.session.expire_all()
    assert (db.session.get(Delivery, sms.id).status, db.session.get(Delivery, sms.id).attempts) == ("sent", 1)
    clock.set(dt.datetime(2024, 6, 22, 9, 30, tzinfo=CST))  # the tour has begun
    response = client.post(f"/api/v1/deliveries/{sms.id}/replay", headers=auth(editor))
    assert response.status_code == 409 and response.json["error"]["code"] == "too_late"
    assert client.post("/api/v1/deliveries/01HZZZZZZZZZZZZZZZZZZZZZZZ/replay", headers=auth(editor)).status_code == 404


def test_alerts_reach_the_organization_and_those_above_it(client, city):
    raise_alert(city["xinhui"].id, "webhook.disabled", "Webhook endpoint was disabled.", "endpoint:1")
    db.session.commit()
    manager = create_user(Role.MANAGER, city["bureau"])
    items = client.get("/api/v1/alerts", headers=auth(manager)).json["items"]
    assert [(a["org"], a["kind"]) for a in items] == [("xinhui", "webhook.disabled")]
    outsider = create_user(Role.MANAGER, city["kaiping"])
    assert client.get("/api/v1/alerts", headers=auth(outsider)).json["items"] == []


def test_a_group_robot_is_an_endpoint_whose_key_is_not_shown_again(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7fff-4bc4-97a0-0ec2sifa5aaa"
    created = client.post("/api/v1/webhooks", json={"url": url, "kind": "wecom", "alerts": True}, headers=auth(editor))
    assert created.status_code == 201, created.json
    assert (created.json["kind"], created.json["url"], created.json["alerts"], created.json["secret"]) == ("wecom", url, True, "")
    shown = client.get(f"/api/v1/webhooks/{created.json['id']}", headers=auth(editor)).json
    assert shown["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a…"
    rotate = client.post(f"/api/v1/webhooks/{created.json['id']}/rotate", headers=auth(editor))
    assert rotate.status_code == 409 and rotate.json["error"]["code"] == "not_a_webhook"
    refused = client.post("/api/v1/webhooks", json={"url": URL, "secret": "mine"}, headers=auth(editor))
    assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["secret"]
    signed = client.post("/api/v1/webhooks", json={"url": "https://oapi.dingtalk.com/robot/send?access_token=abc", "kind": "dingtalk",
                                                   "secret": "SEC1234"}, headers=auth(editor))
    assert signed.status_code == 201 and db.session.get(WebhookEndpoint, signed.json["id"]).secret == "SEC1234"
