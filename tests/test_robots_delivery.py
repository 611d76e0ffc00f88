"""Group robots end to end: endpoints made through the API, reminders and alerts dispatched and
sent through the sender to the fake WeCom, DingTalk and Feishu robots of ``tests/fake_robots.py``
(which check each platform's signature), digests, the rate limit, gone robots, the unsubscribe
link in every message, alert routing and the retry schedule.

Nothing sleeps for the scheduler: the injected clock is moved and ``dispatch_due()`` /
``run_once()`` do in this thread what the background dispatcher and senders do. (The robots'
signatures use the wall clock, which the fakes check against their own.)
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.alerts.models import Alert
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.operations import create_endpoint
from scheduler.channels.registry import CHANNELS
from scheduler.channels.sms.links import signed_code, unsubscribe_url
from scheduler.extensions import db
from scheduler.reminders.dispatch import queue_ping
from scheduler.reminders.models import Delivery
from scheduler.reminders.sender import run_once
from scheduler.util import http
from tests.pages import csrf_token
from tests.factories import CST, auth, create_event, create_org, create_user
from tests.fake_robots import Answer, FakeRobots, markdown_of
from tests.outbox import deliveries, fresh, only, tick

DINGTALK_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
FEISHU_SECRET = "fs-secret-0123456789"
SECRETS = {"wecom": "", "dingtalk": DINGTALK_SECRET, "feishu": FEISHU_SECRET}
_UNSET = object()


def at(month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, second, tzinfo=CST)


@pytest.fixture(autouse=True)
def loopback(app) -> Iterator[None]:
    """Let outgoing requests (and endpoint URLs) reach 127.0.0.1; forget kept connections afterwards."""
    saved = app.config.get("OUTBOUND_ALLOWLIST", _UNSET)
    app.config["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    yield
    if saved is _UNSET:
        app.config.pop("OUTBOUND_ALLOWLIST", None)
    else:
        app.config["OUTBOUND_ALLOWLIST"] = saved
    http.forget_connections()


@pytest.fixture
def robots() -> Iterator[FakeRobots]:
    with FakeRobots() as fake:
        yield fake
    assert fake.rejected == [], "a robot refused a request (signature or shape)"


@pytest.fixture
def org(ctx):
    return create_org("wyu")


@pytest.fixture
def headers(org) -> dict[str, str]:
    return auth(create_user(org=org))


def add_robot(client, headers, robots: FakeRobots, kind: str, token: str, *, register: bool = True, **fields: Any) -> WebhookEndpoint:
    """A robot endpoint created through the API (``register=False``: the platform does not know its key)."""
    secret = SECRETS[kind]
    url = robots.add(kind, token, secret) if register else robots.url(kind, token)
    body = {"kind": kind, "url": url, **({"secret": secret} if secret else {}), **fields}
    answer = client.post("/api/v1/webhooks", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    assert (created["kind"], created["url"], created["secret"]) == (kind, url, secret)
    return db.session.get(WebhookEndpoint, created["id"])






def pings(endpoint: WebhookEndpoint, count: int) -> list[str]:
    ids = [queue_ping(endpoint) for _ in range(count)]
    db.session.commit()
    return ids


def unsubscribe_link(markdown: str) -> str:
    match = re.search(r"\[不再接收\]\((http://scheduler\.test(/u/[^)]+))\)", markdown)
    assert match, markdown
    return match.group(2)



def alerts(org, kind: str | None = None) -> list[Alert]:
    stmt = select(Alert).where(Alert.org_id == org.id).order_by(Alert.id)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    return list(db.session.scalars(stmt))


# -- 1. digests -------------------------------------------------------------------------------

def test_three_reminders_due_together_are_one_digest_per_robot(org, client, headers, robots, clock):
    endpoints = {kind: add_robot(client, headers, robots, kind, f"{kind}-token", types=["reminder.due"])
                 for kind in ("wecom", "dingtalk", "feishu")}
    events = [create_event(org, publish=True, reminders=["P1D"], title=f"科普活动{n}") for n in range(3)]
    assert run_once() == 0  # reminder.due only: nothing for the publications
    assert tick(clock, at(6, 21, 8, 59)) == 0
    assert tick(clock, at(6, 21)) == 9
    assert sorted(m.robot for m in robots.messages) == ["dingtalk", "feishu", "wecom"]
    for message in robots.messages:
        text = markdown_of(message)
        assert all(f"**[{event.title}](http://scheduler.test/events/{event.id})**" in text for event in events), message.robot
        assert text.count("时间：6月22日 09:00") == 3 and text.count("集合：江门市科技馆北门") == 3
        assert unsubscribe_link(text) == unsubscribe_url(endpoints[message.robot].id).removeprefix("http://scheduler.test")
    by_robot = {m.robot: m for m in robots.messages}
    assert markdown_of(by_robot["wecom"]).startswith("### 科普活动提醒（3 条）")
    assert by_robot["dingtalk"].query["sign"] and by_robot["dingtalk"].body["markdown"]["title"] == "科普活动提醒（3 条）"
    feishu = by_robot["feishu"].body
    assert feishu["card"]["header"]["title"]["content"] == "科普活动提醒（3 条）" and feishu["sign"]
    sent = deliveries()
    assert len(sent) == 9 and {(d.status, d.attempts, d.sent_at) for d in sent} == {("sent", 1, at(6, 21))}
    assert {d.endpoint_id for d in sent} == {e.id for e in endpoints.values()}
    assert all(fresh(e).last_success_at == at(6, 21) for e in endpoints.values())
    assert run_once() == 0 and len(robots.messages) == 3


# -- 2. the rate limit ------------------------------------------------------------------------

def test_a_message_over_the_window_waits_for_it_without_counting_an_attempt(org, client, headers, robots, clock, monkeypatch):
    monkeypatch.setattr(CHANNELS["wecom"], "rate_limit", (2, 60))
    robot = add_robot(client, headers, robots, "wecom", "wc")
    start = clock()
    pings(robot, 1)
    assert run_once() == 1
    clock.advance(seconds=10)
    pings(robot, 1)
    assert run_once() == 1
    clock.advance(seconds=10)
    [third] = pings(robot, 1)
    assert run_once() == 0
    held = fresh(db.session.get(Delivery, third))
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, start + dt.timedelta(seconds=60))
    assert "rate limit" in held.last_error and len(robots.messages) == 2
    clock.set(start + dt.timedelta(seconds=59))
    assert run_once() == 0
    clock.set(start + dt.timedelta(seconds=60))
    assert run_once() == 1
    assert (fresh(held).status, fresh(held).attempts) == ("sent", 1) and len(robots.messages) == 3


@pytest.mark.parametrize(("limit", "count", "first"), [((2, 60), 25, [10, 10]), ((1, 60), 11, [10])])
def test_a_burst_over_the_window_is_held_until_the_window_frees(org, client, headers, robots, clock, monkeypatch,
                                                                  limit, count, first):
    monkeypatch.setattr(CHANNELS["dingtalk"], "rate_limit", limit)
    robot = add_robot(client, headers, robots, "dingtalk", "dt")
    pings(robot, count)
    start = clock()
    assert run_once() == sum(first)
    assert [markdown_of(m).count("机器人已连通") for m in robots.messages] == first
    held = deliveries(status="pending")
    assert len(held) == count - sum(first)
    assert {(d.attempts, d.next_attempt_at) for d in held} == {(0, start + dt.timedelta(seconds=limit[1]))}
    clock.set(start + dt.timedelta(seconds=limit[1] - 1))
    assert run_once() == 0 and len(robots.messages) == len(first)
    clock.set(start + dt.timedelta(seconds=limit[1]))
    assert run_once() == count - sum(first)
    assert len(robots.messages) == len(first) + 1
    assert {d.status for d in deliveries()} == {"sent"}


def test_feishus_own_window_holds_a_fifth_message_for_three_seconds(org, client, headers, robots, clock):
    robot = add_robot(client, headers, robots, "feishu", "fs")
    start = clock()
    for n in range(4):
        clock.set(start + dt.timedelta(milliseconds=200 * n))
        pings(robot, 1)
        assert run_once() == 1
    clock.set(start + dt.timedelta(seconds=1))
    [fifth] = pings(robot, 1)
    assert run_once() == 0
    held = fresh(db.session.get(Delivery, fifth))
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, start + dt.timedelta(seconds=3))
    clock.set(start + dt.timedelta(seconds=3))
    assert run_once() == 1 and len(robots.messages) == 5


# -- 3. gone robots and the unsubscribe link --------------------------------------------------

@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_a_robot_whose_key_is_invalid_is_disabled_with_an_alert(org, client, headers, robots, clock, kind):
    robot = add_robot(client, headers, robots, kind, "removed", register=False)
    pings(robot, 2)
    assert run_once() == 2
    robots.rejected.clear()  # the platform's own answer to an unknown key
    robot = fresh(robot)
    assert robot.enabled is False and robot.disabled_at == clock()
    assert {d.status for d in deliveries(endpoint_id=robot.id)} == {"dead"}
    [alert] = alerts(org, "webhook.disabled")
    assert alert.subject == f"endpoint:{robot.id}"
    create_event(org, publish=True)
    assert run_once() == 0 and robots.messages == []


def test_the_unsubscribe_link_disables_the_robot_and_tells_the_organizers(org, client, headers, robots, clock):
    robot = add_robot(client, headers, robots, "wecom", "wc", types=["event.published"])
    alarm = add_robot(client, headers, robots, "feishu", "alarm", types=["event.cancelled"], alerts=True)
    create_event(org, publish=True)
    assert run_once() == 1
    [message] = robots.messages
    link = unsubscribe_link(markdown_of(message))
    page = client.get(link)
    assert page.status_code == 200 and "确认退订" in page.get_data(as_text=True)
    assert client.post(link).status_code == 400  # no CSRF token
    assert fresh(robot).enabled is True
    answer = client.post(link, data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    robot = fresh(robot)
    assert (robot.enabled, robot.disabled_reason) == (False, "Unsubscribed by the link in its messages.")
    [alert] = alerts(org, "webhook.disabled")
    assert "Unsubscribed by the link" in alert.message
    assert "已停止发送" in client.get(link).get_data(as_text=True)
    assert fresh(alarm).enabled is True
    create_event(org, publish=True)
    assert run_once() == 1  # the alert to the alert robot; nothing for the unsubscribed one
    assert [m.robot for m in robots.messages] == ["wecom", "feishu"]
    assert "**机构提醒**（webhook.disabled）" in markdown_of(robots.messages[-1])


def test_a_forged_unsubscribe_code_is_not_found(org, client, headers, robots):
    robot = add_robot(client, headers, robots, "wecom", "wc")
    for code in ("garbage", f"{robot.id}-AAAAAAAAAAAA", signed_code("sms-manage", robot.id)):
        assert client.get(f"/u/{code}").status_code == 404
    assert client.get(unsubscribe_url(robot.id + 1000).removeprefix("http://scheduler.test")).status_code == 404
    assert fresh(robot).enabled is True


# -- 4 and 5. alerts routed to the alert robot; the retry schedule ------------------------------

def test_alerts_go_to_the_alert_robot_of_the_organization(org, client, headers, robots, clock):
    add_robot(client, headers, robots, "wecom", "removed", register=False, types=["event.published"])
    alarm = add_robot(client, headers, robots, "dingtalk", "alarm", types=["event.cancelled"], alerts=True)
    elsewhere = create_org("elsewhere")
    create_endpoint(elsewhere, robots.add("feishu", "other"), kind="feishu", alerts=True, types=["event.cancelled"])
    db.session.commit()
    event = create_event(org, publish=True)
    clock.advance(seconds=1)
    # the robot that is gone, then the alert it raised (one: its own message is not counted again as "gave up")
    assert run_once() == 2
    robots.rejected.clear()
    assert {a.kind for a in alerts(org)} == {"webhook.disabled"}
    [message] = robots.messages
    assert (message.robot, message.token) == ("dingtalk", "alarm")
    text = markdown_of(message)
    assert "**机构提醒**（webhook.disabled）" in text and event.title not in text
    assert "removed" not in text  # the gone robot's key is not posted to the alert group
    sent = deliveries(type="alert")
    assert {(d.endpoint_id, d.status) for d in sent} == {(alarm.id, "sent")} and len(sent) == 1
    assert alerts(elsewhere) == []


def test_retries_wait_5_s_1_min_11_min_then_dead_and_the_alert_robot_is_told(org, client, headers, robots, clock):
    robot = add_robot(client, headers, robots, "wecom", "wc", types=["reminder.due"])
    alarm = add_robot(client, headers, robots, "feishu", "alarm", types=["event.cancelled"], alerts=True)
    create_event(org, publish=True, reminders=["P1D"])
    robots.respond(*[Answer(500, None)] * 4)
    assert tick(clock, at(6, 21)) == 1
    tried = clock()
    for attempts, wait in ((1, dt.timedelta(seconds=5)), (2, dt.timedelta(minutes=1)), (3, dt.timedelta(minutes=11))):
        delivery = only(endpoint_id=robot.id)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("retrying", attempts, 500)
        assert tried + wait <= delivery.next_attempt_at <= tried + wait * 1.1 + dt.timedelta(microseconds=1)
        clock.set(delivery.next_attempt_at - dt.timedelta(milliseconds=1))
        assert run_once() == 0
        clock.set(delivery.next_attempt_at)
        tried = clock()
        assert run_once() == (1 if attempts < 3 else 2)  # the fourth attempt, then (dead) the alert in the same round
    delivery = only(endpoint_id=robot.id)
    assert (delivery.status, delivery.attempts) == ("dead", 4) and delivery.last_error.startswith("Gave up after 4 attempts")
    assert fresh(robot).enabled is True  # a run of failures, not a gone robot
    [alert] = alerts(org)
    assert alert.kind == "delivery.dead" and "1 deliveries gave up" in alert.message
    assert [m.robot for m in robots.messages] == ["wecom"] * 4 + ["feishu"]
    assert "**机构提醒**（delivery.dead）" in markdown_of(robots.messages[-1])
    assert only(endpoint_id=alarm.id).status == "sent"
