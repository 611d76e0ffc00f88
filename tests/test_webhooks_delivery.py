"""Webhook delivery end to end: event messages, reminders, retries, disabling, expiry,
secret rotation and duplicate safety, against a real verifying receiver on 127.0.0.1.

Nothing sleeps: the injected clock is moved to each due time and ``dispatch_due()`` /
``run_once()`` do in this thread what the background scheduler and senders do.
"""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import os

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
import requests
from sqlalchemy import select

from scheduler.alerts.models import Alert
from scheduler.channels.sms import console as sms_console
from scheduler.channels.sms.links import manage_url
from scheduler.channels.base import Failed, Retry, Sent
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.webhook import sign
from scheduler.events import operations as ops
from scheduler.extensions import db
from scheduler.registrations.operations import register
from scheduler.reminders import policy, sender
from scheduler.reminders.dispatch import dispatch_due, queue_event_message, queue_ping
from scheduler.reminders.models import Delivery, Reminder
from scheduler.reminders.sender import run_once
from scheduler.util import http
from tests.factories import CST, create_city, create_event, create_org
from tests.receiver import Answer, Receiver
from tests.outbox import deliveries, fresh, only, tick

S, M, H = dt.timedelta(seconds=1), dt.timedelta(minutes=1), dt.timedelta(hours=1)
#: Delay before attempts 2..8 (the first is immediate): Standard Webhooks' schedule.
SCHEDULE = [5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H]


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=CST)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@pytest.fixture(autouse=True)
def loopback(app):
    """Let outgoing requests reach 127.0.0.1 (the receiver); forget kept connections afterwards."""
    saved = app.config.get("OUTBOUND_ALLOWLIST")
    app.config["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    yield
    app.config["OUTBOUND_ALLOWLIST"] = saved
    http.forget_connections()


@pytest.fixture
def org(ctx):
    return create_org("wyu")


def make_endpoint(org, receiver, path: str = "/hook", **fields) -> WebhookEndpoint:
    """An endpoint of ``org`` at the receiver, whose secret the receiver verifies with."""
    values = {"kinds": [], "org_ids": [], "types": [], "secret": new_secret()} | fields
    endpoint = WebhookEndpoint(org_id=org.id, url=receiver.url(path), **values)
    db.session.add(endpoint)
    db.session.commit()
    receiver.secrets.append(endpoint.secret)
    return endpoint






# -- 1. event messages -------------------------------------------------------------------------

def test_publishing_sends_the_event_as_the_api_shows_it(org, receiver, client):
    make_endpoint(org, receiver)
    event = create_event(org, publish=True)
    assert run_once() == 1
    [msg] = receiver.messages
    delivery = only(event_id=event.id)
    assert (delivery.status, delivery.type, delivery.attempts, delivery.last_status_code) == ("sent", "event.published", 1, 204)
    assert msg.id == delivery.id and msg.headers["content-type"] == "application/json"
    assert list(msg.body) == ["type", "timestamp", "data", "unsubscribe"]
    assert msg.body["type"] == "event.published"
    stop = client.get(msg.body["unsubscribe"].removeprefix("http://scheduler.test"))
    assert stop.status_code == 200 and "退订" in stop.get_data(as_text=True)  # a POST there disables the endpoint
    assert msg.body["timestamp"] == "2024-06-15T02:00:00Z"
    api = client.get(f"/api/v1/events/{event.id}").get_json()
    sent = msg.body["data"]["event"]
    assert {k: v for k, v in sent.items() if k != "links"} == {k: v for k, v in api.items() if k != "links"}
    assert (sent["id"], sent["title"], sent["starts_at"]) == (event.id, event.title, api["starts_at"])
    assert sent["links"] == api["links"] | {
        "page": f"http://scheduler.test/events/{event.id}",
        "ics": f"http://scheduler.test/events/{event.id}.ics",
    }
    assert receiver.rejected == []
    assert run_once() == 0  # nothing is sent twice


def test_time_and_place_changes_are_announced_title_changes_are_not(org, receiver):
    make_endpoint(org, receiver)
    event = create_event(org, publish=True, starts_at=at(6, 22), ends_at=at(6, 22, 12))
    ops.update_event(event, {"title": "新标题"})
    db.session.commit()
    ops.update_event(event, {"starts_at": at(6, 23), "venue": "江门市科技馆新馆"})
    db.session.commit()
    ops.update_event(event, {"description": "只改说明"})
    db.session.commit()
    assert run_once() == 2
    by_type = {m.body["type"]: m.body["data"] for m in receiver.messages}  # one batch: in no set order
    assert sorted(by_type) == ["event.published", "event.updated"]
    updated = by_type["event.updated"]
    assert updated["changes"] == {
        "starts_at": {"old": "2024-06-22T01:00:00Z", "new": "2024-06-23T01:00:00Z"},
        "ends_at": {"old": "2024-06-22T04:00:00Z", "new": "2024-06-23T04:00:00Z"},
        "venue": {"old": "江门市科技馆", "new": "江门市科技馆新馆"},
    }
    assert updated["event"]["title"] == "新标题" and updated["event"]["venue"] == "江门市科技馆新馆"


def test_cancelling_announces_it_and_no_reminder_follows(org, receiver, clock):
    make_endpoint(org, receiver)
    event = create_event(org, publish=True)  # 22 June 09:00: reminders 19 and 21 June
    assert run_once() == 1
    ops.cancel_event(event, "台风")
    db.session.commit()
    assert run_once() == 1
    cancelled = receiver.messages[-1].body
    assert cancelled["type"] == "event.cancelled" and cancelled["data"]["event"]["status"] == "cancelled"
    assert {r.status for r in db.session.scalars(select(Reminder).where(Reminder.event_id == event.id))} == {"cancelled"}
    for when in (at(6, 19), at(6, 21), at(6, 22, 8)):
        tick(clock, when)
    assert [m.body["type"] for m in receiver.messages] == ["event.published", "event.cancelled"]


def test_filters_choose_the_messages_an_endpoint_receives(ctx, receiver):
    city = create_city()
    make_endpoint(city["bureau"], receiver, "/fairs", kinds=["matchmaking"])
    make_endpoint(city["bureau"], receiver, "/xinhui", org_ids=[city["xinhui"].id])
    make_endpoint(city["bureau"], receiver, "/below-bureau", org_ids=[city["bureau"].id])
    make_endpoint(city["bureau"], receiver, "/cancellations", types=["event.cancelled"])
    make_endpoint(city["bureau"], receiver, "/xinhui-fair-news", kinds=["matchmaking"], org_ids=[city["xinhui"].id],
                  types=["event.published"])
    tour = create_event(city["kaiping"], publish=True)
    fair = create_event(city["xinhui"], publish=True, kind="matchmaking", details={"sector": "new_energy"},
                        starts_at=at(7, 10, 14), ends_at=at(7, 10, 17))
    ops.cancel_event(tour, "场地维修")
    ops.cancel_event(fair, "场地维修")
    db.session.commit()
    run_once()
    received = {path: [(m.body["type"], m.body["data"]["event"]["id"]) for m in receiver.by_path(path)]
                for path in ("/fairs", "/xinhui", "/below-bureau", "/cancellations", "/xinhui-fair-news")}
    assert {path: sorted(got) for path, got in received.items()} == {
        "/fairs": sorted([("event.published", fair.id), ("event.cancelled", fair.id)]),
        "/xinhui": sorted([("event.published", fair.id), ("event.cancelled", fair.id)]),
        "/below-bureau": sorted([("event.published", tour.id), ("event.published", fair.id),
                                 ("event.cancelled", tour.id), ("event.cancelled", fair.id)]),
        "/cancellations": sorted([("event.cancelled", tour.id), ("event.cancelled", fair.id)]),
        "/xinhui-fair-news": [("event.published", fair.id)],
    }


# -- 2. reminder plans end to end -----------------------------------------------------------------

def arrivals(receiver) -> list[tuple[dt.datetime, int, str, str]]:
    return [(m.at.astimezone(CST), m.body["data"]["event"]["id"], m.body["data"]["reminder"]["offset"],
             m.body["data"]["reminder"]["occurrence_start"]) for m in receiver.messages]


def test_default_plans_send_reminders_at_their_times(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    tour = create_event(org, publish=True, starts_at=at(6, 22), ends_at=at(6, 22, 12))  # P3D, P1D
    fair = create_event(org, publish=True, kind="matchmaking", details={"sector": "new_energy"},
                        starts_at=at(6, 20, 14), ends_at=at(6, 20, 17))  # P7D already past: P1D, PT2H
    for when in (at(6, 19, 8, 59), at(6, 19), at(6, 19, 13, 59), at(6, 19, 14), at(6, 20, 11, 59), at(6, 20, 12),
                 at(6, 21), at(6, 22, 8)):
        tick(clock, when)
    assert arrivals(receiver) == [
        (at(6, 19), tour.id, "P3D", "2024-06-22T01:00:00Z"),
        (at(6, 19, 14), fair.id, "P1D", "2024-06-20T06:00:00Z"),
        (at(6, 20, 12), fair.id, "PT2H", "2024-06-20T06:00:00Z"),
        (at(6, 21), tour.id, "P1D", "2024-06-22T01:00:00Z"),
    ]
    first = receiver.messages[0].body
    assert first["type"] == "reminder.due" and first["timestamp"] == "2024-06-19T01:00:00Z"
    assert first["data"]["reminder"]["scheduled_at"] == "2024-06-19T01:00:00Z"
    assert first["data"]["event"]["title"] == tour.title
    assert first["data"]["reminder"]["meeting"] == {"point": "江门市科技馆北门", "time": "2024-06-22T09:00:00+08:00"}
    assert "meeting" not in receiver.messages[1].body["data"]["reminder"]  # the fair has no meeting point
    assert len(set(receiver.ids_in_order())) == 4


def test_a_moved_event_is_reminded_of_at_its_new_time(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    event = create_event(org, publish=True, starts_at=at(6, 22), ends_at=at(6, 22, 12), reminders=["P1D"])
    ops.update_event(event, {"starts_at": at(6, 29)})
    db.session.commit()
    assert tick(clock, at(6, 21)) == 0  # the old time: nothing
    assert tick(clock, at(6, 28)) == 1
    assert arrivals(receiver) == [(at(6, 28), event.id, "P1D", "2024-06-29T01:00:00Z")]
    assert receiver.messages[0].body["data"]["event"]["starts_at"].startswith("2024-06-29")


def test_deliveries_written_ahead_leave_on_time_and_a_change_takes_them_back(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    event = create_event(org, publish=True, starts_at=at(6, 22), ends_at=at(6, 22, 12), reminders=["P1D"])
    clock.set(at(6, 21) - 10 * S)
    assert dispatch_due(lookahead=10 * S) == 1  # written ahead, to go at 09:00 sharp
    db.session.commit()
    [ahead] = deliveries(type="reminder.due")
    assert ahead.next_attempt_at == at(6, 21) and ahead.created_at == at(6, 21) - 10 * S
    assert run_once() == 0  # not yet
    ops.update_event(event, {"venue": "江门市科技馆二楼"})  # a change before it leaves: the message shows it
    db.session.commit()
    assert deliveries(type="reminder.due") == []
    assert db.session.scalar(select(Reminder.status).where(Reminder.event_id == event.id)) == "pending"
    assert dispatch_due(lookahead=10 * S) == 1
    db.session.commit()
    clock.set(at(6, 21))
    assert run_once() == 1
    [message] = receiver.messages
    assert message.body["data"]["event"]["venue"] == "江门市科技馆二楼"
    assert message.body["timestamp"] == "2024-06-21T01:00:00Z"


def test_each_occurrence_of_a_series_gets_its_own_reminder(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    series = create_event(org, publish=True, starts_at=at(6, 22), ends_at=at(6, 22, 12), reminders=["P1D"],
                          rrule="FREQ=WEEKLY;COUNT=3")
    for when in (at(6, 21), at(6, 28), at(7, 5), at(7, 12)):
        tick(clock, when)
    assert arrivals(receiver) == [
        (at(6, 21), series.id, "P1D", "2024-06-22T01:00:00Z"),
        (at(6, 28), series.id, "P1D", "2024-06-29T01:00:00Z"),
        (at(7, 5), series.id, "P1D", "2024-07-06T01:00:00Z"),
    ]
    assert len({m.body["data"]["reminder"]["id"] for m in receiver.messages}) == 3


def test_seated_registrants_get_an_sms_waitlisted_ones_do_not(org, clock):
    sms_console.OUTBOX.clear()
    event = create_event(org, publish=True, capacity=1, reminders=["P1D"])
    seated, _ = register(event, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    waiting, _ = register(event, name="李四", phone="13900139000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    assert (seated.status, waiting.status) == ("registered", "waitlisted")
    assert tick(clock, at(6, 21)) == 1
    sms = only(channel="sms")
    assert (sms.registration_id, sms.status, sms.type) == (seated.id, "sent", "reminder.due")
    assert [phone for phone, _ in sms_console.OUTBOX] == [seated.phone]
    assert sms_console.OUTBOX[0][1] == (
        f"【江门科技】您报名的“{event.title}”将于6月22日 09:00开始，地点：江门市科技馆，集合：6月22日 09:00 江门市科技馆北门。"
        f"管理提醒：{manage_url(seated.id)}"
    )


# -- 3. retries ---------------------------------------------------------------------------------

def assert_retrying_on_schedule(delivery_id: str, attempts: int, tried_at: dt.datetime) -> Delivery:
    """After ``attempts`` failures the next try is the schedule's delay later, plus at most 10 %, never earlier."""
    delivery = fresh_delivery(delivery_id)
    delay = SCHEDULE[attempts - 1]
    assert (delivery.status, delivery.attempts) == ("retrying", attempts)
    assert tried_at + delay <= delivery.next_attempt_at <= tried_at + delay * 1.1 + dt.timedelta(microseconds=1)
    return delivery


def fresh_delivery(delivery_id: str) -> Delivery:
    db.session.expire_all()
    return db.session.get(Delivery, delivery_id)


def test_failures_retry_on_schedule_until_dead_with_the_same_id(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    receiver.always(500)
    create_event(org, publish=True)
    delivery_id = only().id
    assert run_once() == 1
    for attempts in range(1, 8):
        delivery = assert_retrying_on_schedule(delivery_id, attempts, clock.at)
        assert (delivery.last_status_code, delivery.last_error) == (500, "The endpoint answered 500.")
        clock.set(delivery.next_attempt_at - dt.timedelta(milliseconds=500))
        assert run_once() == 0  # never earlier
        clock.set(delivery.next_attempt_at)
        assert run_once() == 1
    delivery = fresh_delivery(delivery_id)
    assert (delivery.status, delivery.attempts) == ("dead", 8)
    assert delivery.last_error == "Gave up after 8 attempts: The endpoint answered 500."
    assert receiver.ids_in_order() == [delivery_id] * 8
    endpoint = fresh(endpoint)
    assert endpoint.enabled and endpoint.consecutive_failures == 8 and endpoint.last_success_at is None
    clock.advance(days=1)
    assert run_once() == 0


def test_a_recovered_receiver_gets_the_message_and_the_endpoint_is_healthy_again(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    receiver.respond(500, 502, 500)
    create_event(org, publish=True)
    delivery_id = only().id
    started = clock.at
    for attempts in range(1, 4):
        assert run_once() == 1
        clock.set(assert_retrying_on_schedule(delivery_id, attempts, clock.at).next_attempt_at)
    failing = fresh(endpoint)
    assert (failing.consecutive_failures, failing.failing_since, failing.last_error) == (3, started, "The endpoint answered 500.")
    assert run_once() == 1
    delivery = fresh_delivery(delivery_id)
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == ("sent", 4, clock.at, None)
    healthy = fresh(endpoint)
    assert (healthy.consecutive_failures, healthy.failing_since, healthy.last_success_at) == (0, None, clock.at)
    assert [m.status for m in receiver.messages] == [500, 502, 500, 204]
    assert set(receiver.ids_in_order()) == {delivery_id}


def test_retry_after_is_honoured(org, receiver, clock):
    make_endpoint(org, receiver)
    wall_in_two_hours = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + 2 * H, usegmt=True)
    receiver.respond(Answer(503, {"Retry-After": "3600"}), Answer(429, {"Retry-After": wall_in_two_hours}))
    create_event(org, publish=True)
    delivery_id = only().id
    assert run_once() == 1
    delivery = fresh_delivery(delivery_id)
    assert delivery.status == "retrying" and delivery.next_attempt_at == clock.at + H
    clock.advance(minutes=59)
    assert run_once() == 0
    clock.set(delivery.next_attempt_at)
    assert run_once() == 1  # 429 with an HTTP date two hours ahead
    delivery = fresh_delivery(delivery_id)
    assert clock.at + 2 * H - M <= delivery.next_attempt_at <= clock.at + 2 * H
    clock.set(delivery.next_attempt_at)
    assert run_once() == 1
    assert fresh_delivery(delivery_id).status == "sent"
    assert receiver.ids_in_order() == [delivery_id] * 3


def test_a_receiver_that_is_down_gets_the_message_when_it_is_up_again(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    queue_ping(endpoint)
    db.session.commit()
    assert run_once() == 1  # a kept-alive connection now exists
    receiver.down()
    create_event(org, publish=True)
    delivery_id = only(type="event.published").id
    assert run_once() == 1
    delivery = fresh_delivery(delivery_id)
    assert (delivery.status, delivery.last_error, delivery.last_status_code) == (
        "retrying", "Could not connect to 127.0.0.1.", None)
    clock.set(delivery.next_attempt_at)
    assert run_once() == 1  # still down
    delivery = assert_retrying_on_schedule(delivery_id, 2, clock.at)
    receiver.up()
    clock.set(delivery.next_attempt_at)
    assert run_once() == 1
    assert fresh_delivery(delivery_id).status == "sent"
    assert [m.body["type"] for m in receiver.messages] == ["ping", "event.published"]
    assert receiver.messages[1].id == delivery_id
    assert fresh(endpoint).consecutive_failures == 0


# -- 4. disabling endpoints --------------------------------------------------------------------------

def alerts(org) -> list[Alert]:
    return list(db.session.scalars(select(Alert).where(Alert.org_id == org.id)))


def test_410_disables_the_endpoint_and_cancels_what_waits_for_it(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    other = make_endpoint(org, receiver, "/other")
    receiver.respond(500, path="/hook")  # the first event's message to /hook will wait for a retry
    first = create_event(org, publish=True)
    assert run_once() == 2
    waiting = only(event_id=first.id, endpoint_id=endpoint.id)
    assert waiting.status == "retrying"
    receiver.respond(410, path="/hook")
    second = create_event(org, publish=True)
    assert run_once() == 2
    gone = only(event_id=second.id, endpoint_id=endpoint.id)
    assert (gone.status, gone.last_status_code) == ("dead", 410)
    assert "410" in gone.last_error
    endpoint = fresh(endpoint)
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at) == (False, "The endpoint answered 410 Gone.", clock.at)
    assert fresh_delivery(waiting.id).status == "cancelled"
    assert "disabled" in fresh_delivery(waiting.id).last_error
    [alert] = [a for a in alerts(org) if a.kind == "webhook.disabled"]
    assert [a.kind for a in alerts(org) if a.kind != "webhook.disabled"] == []  # its message is not "given up" twice
    assert (alert.kind, alert.subject) == ("webhook.disabled", f"endpoint:{endpoint.id}")
    assert endpoint.url in alert.message
    assert fresh(other).enabled  # the other endpoint of the organization is not concerned
    clock.advance(days=1)
    create_event(org, publish=True)
    run_once()
    assert {m.path for m in receiver.messages[4:]} == {"/other"}
    assert [m.status for m in receiver.by_path("/hook")] == [500, 410]


def test_an_endpoint_failing_for_five_days_is_disabled(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    receiver.always(503)
    start = clock.at
    for hours in (0, 24, 48, 72, 96, 119):
        clock.set(start + hours * H)
        queue_ping(endpoint)
        db.session.commit()
        run_once()
        assert fresh(endpoint).enabled, hours
    assert alerts(org) == []
    clock.set(start + 120 * H)
    queue_ping(endpoint)
    db.session.commit()
    run_once()
    endpoint = fresh(endpoint)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "Every delivery failed for 5 days.")
    assert endpoint.failing_since == start
    assert [a.kind for a in alerts(org)] == ["webhook.disabled"]
    assert {d.status for d in deliveries()} <= {"dead", "cancelled"}
    assert "retrying" not in {d.status for d in deliveries()}


def test_a_success_ends_the_run_of_failures(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    receiver.always(503)
    start = clock.at
    for hours in (0, 100):
        clock.set(start + hours * H)
        queue_ping(endpoint)
        db.session.commit()
        run_once()
    receiver.always(204)
    clock.set(start + 110 * H)
    run_once()  # both retries succeed
    receiver.always(503)
    clock.set(start + 121 * H)
    queue_ping(endpoint)
    db.session.commit()
    run_once()
    endpoint = fresh(endpoint)
    assert endpoint.enabled and endpoint.failing_since == start + 121 * H


# -- 5. expiry -----------------------------------------------------------------------------------

def test_a_reminder_dispatched_after_the_start_expires_unsent(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    event = create_event(org, publish=True, reminders=["P1D"])
    assert tick(clock, at(6, 22, 9, 1)) == 0  # the process was down until after the start
    [reminder] = db.session.scalars(select(Reminder).where(Reminder.event_id == event.id))
    assert reminder.status == "expired"
    assert deliveries() == [] and receiver.messages == []


def test_a_delivery_not_sent_before_the_start_expires(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    event = create_event(org, publish=True, reminders=["PT1H"])
    clock.set(at(6, 22, 8))
    dispatch_due()
    db.session.commit()
    delivery = only(event_id=event.id)
    assert (delivery.status, delivery.not_after) == ("pending", at(6, 22))
    clock.set(at(6, 22))  # the senders were stuck until the start
    assert run_once() == 0
    delivery = fresh_delivery(delivery.id)
    assert delivery.status == "expired" and "started" in delivery.last_error
    assert receiver.messages == []


def test_a_retried_reminder_expires_at_the_start(org, receiver, clock):
    make_endpoint(org, receiver, types=["reminder.due"])
    create_event(org, publish=True, reminders=["PT1H"])
    receiver.always(500)
    clock.set(at(6, 22, 8))
    dispatch_due()
    db.session.commit()
    for _ in range(3):  # immediately, 5 s, 5 min
        run_once()
        clock.set(only().next_attempt_at)
    run_once()  # 30 min later
    assert only().status == "retrying" and only().next_attempt_at > at(6, 22)
    clock.set(only().next_attempt_at)
    assert run_once() == 0
    assert only().status == "expired" and len(receiver.messages) == 4


# -- 6. secret rotation ----------------------------------------------------------------------------

def test_a_rotated_secret_is_signed_with_too_for_24_hours(org, receiver, clock):
    old, new = new_secret(), new_secret()
    endpoint = make_endpoint(org, receiver, secret=new, previous_secret=old, previous_secret_until=clock.at + 24 * H)
    receiver.secrets = [old, new]
    queue_ping(endpoint)
    db.session.commit()
    assert run_once() == 1
    [msg] = receiver.messages
    assert set(msg.verified_with) == {old, new}  # a receiver still on the old secret verifies, as does one on the new
    assert len(msg.signatures) == 2 and all(s.startswith("v1,") for s in msg.signatures)
    clock.advance(hours=24)
    queue_ping(endpoint)
    db.session.commit()
    assert run_once() == 1
    later = receiver.messages[1]
    assert later.verified_with == (new,) and len(later.signatures) == 1
    receiver.secrets = [old]  # a receiver that never switched is refused now
    queue_ping(endpoint)
    db.session.commit()
    assert run_once() == 1
    [rejected] = receiver.rejected
    assert rejected.headers["webhook-id"] == deliveries()[-1].id
    assert deliveries()[-1].status == "retrying" and deliveries()[-1].last_status_code == 401
    assert receiver.count == 2


# -- 7. duplicate safety ----------------------------------------------------------------------------

def test_a_doubled_dispatcher_adds_no_second_delivery(org, receiver, clock):
    make_endpoint(org, receiver)
    event = create_event(org, publish=True, reminders=["P1D"])
    register(event, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    clock.set(at(6, 21))
    assert dispatch_due() == 1
    assert dispatch_due() == 0
    db.session.commit()
    [reminder] = db.session.scalars(select(Reminder).where(Reminder.event_id == event.id))
    before = {(d.dedupe_key, d.recipient_key, d.channel): d.id for d in deliveries(reminder_id=reminder.id)}
    assert len(before) == 2  # the endpoint and the registrant's SMS
    reminder.status = "pending"  # a second dispatcher that read it as pending before the first committed
    db.session.commit()
    assert dispatch_due() == 1
    queue_event_message(event, "event.published")  # the same message queued again
    db.session.commit()
    assert {(d.dedupe_key, d.recipient_key, d.channel): d.id for d in deliveries(reminder_id=reminder.id)} == before
    assert len(deliveries(type="event.published")) == 1
    sms_console.OUTBOX.clear()
    run_once()
    assert sorted(m.body["type"] for m in receiver.messages) == ["event.published", "reminder.due"]
    assert len(sms_console.OUTBOX) == 1


def test_a_lost_claim_is_sent_again_with_the_same_id_and_the_late_result_is_fenced_off(org, receiver, clock):
    endpoint = make_endpoint(org, receiver)
    create_event(org, publish=True)
    taken = sender.claim(10)
    db.session.commit()
    [outgoing] = taken.outgoing
    assert isinstance(sender.send_one(outgoing), Sent)  # arrived; the sender dies before recording it
    clock.advance(seconds=30)
    assert sender.reclaim_expired_leases() == 0  # still leased
    assert run_once() == 0
    clock.set(clock.at - 30 * S + policy.LEASE + S)
    assert sender.reclaim_expired_leases() == 1
    db.session.commit()
    delivery = fresh_delivery(outgoing.id)
    assert (delivery.status, delivery.leased_by, delivery.next_attempt_at) == ("retrying", None, clock.at)
    assert run_once() == 1
    assert receiver.ids_in_order() == [outgoing.id, outgoing.id]
    assert [m.raw for m in receiver.messages][0] == receiver.messages[1].raw
    # the presumed-dead sender comes back and records what it saw: nothing changes
    sender.record(taken.token, [(outgoing, Failed("The endpoint answered 410 Gone.", 410, gone=True))])
    db.session.commit()
    delivery = fresh_delivery(outgoing.id)
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.last_status_code) == ("sent", 2, None, 204)
    endpoint = fresh(endpoint)
    assert endpoint.enabled and endpoint.consecutive_failures == 0
    assert alerts(org) == []


def test_a_claim_released_unsent_is_not_counted_as_an_attempt(org, receiver, clock):
    make_endpoint(org, receiver)
    create_event(org, publish=True)
    taken = sender.claim(10)
    db.session.commit()
    sender.release(taken.token, [o.id for o in taken.outgoing])
    sender.record("someone-else", [(taken.outgoing[0], Retry("not mine"))])
    db.session.commit()
    delivery = only()
    assert (delivery.status, delivery.attempts, delivery.leased_by) == ("pending", 0, None)
    assert run_once() == 1 and only().status == "sent"


def test_a_lost_sms_claim_is_not_sent_again_blindly(org, clock):
    sms_console.OUTBOX.clear()
    event = create_event(org, publish=True, reminders=["P1D"])
    register(event, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    clock.set(at(6, 21))
    dispatch_due()
    db.session.commit()
    sender.claim(10)
    db.session.commit()
    clock.advance(seconds=policy.LEASE.total_seconds() + 1)
    assert sender.reclaim_expired_leases() == 1
    db.session.commit()
    assert only().status == "unknown"
    assert run_once() == 0 and list(sms_console.OUTBOX) == []


# -- the receiver itself --------------------------------------------------------------------------

def test_the_receiver_refuses_what_it_cannot_verify_and_counts_in_fast_mode():
    secret = new_secret()
    body = '{"type":"ping","timestamp":"2024-06-15T02:00:00Z","data":{}}'
    with Receiver([secret], fast=True) as fast, requests.Session() as client:
        good = sign("msg_1", dt.datetime.now(dt.timezone.utc), body, (new_secret(), secret))
        assert client.post(fast.url(), data=body.encode(), headers=good, timeout=5).status_code == 204
        assert client.post(fast.url(), data=body.encode(), headers=good, timeout=5).status_code == 204
        forged = sign("msg_2", dt.datetime.now(dt.timezone.utc), body, (new_secret(),))
        assert client.post(fast.url(), data=body.encode(), timeout=5).status_code == 401
        assert client.post(fast.url(), data=body.encode(), headers=forged, timeout=5).status_code == 401
        stale = sign("msg_3", dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10), body, (secret,))
        assert client.post(fast.url(), data=body.encode(), headers=stale, timeout=5).status_code == 401
        assert (fast.count, fast.ids, fast.messages) == (2, {"msg_1": 2}, [])
        assert len(fast.rejected) == 3 and "No matching signature" in fast.rejected[1].error
        port = fast.port
        fast.down()
        with pytest.raises(requests.ConnectionError):
            client.post(fast.url(), data=body.encode(), headers=good, timeout=5)
        fast.up()
        assert fast.port == port
        assert client.post(fast.url(), data=body.encode(), headers=good, timeout=5).status_code == 204
        assert fast.wait_for(3, timeout=1) and not fast.wait_for(4, timeout=0.05)
