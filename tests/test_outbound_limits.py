"""Outgoing requests are bounded (issue 13): one deadline for the whole exchange, a cap on what
one endpoint gets at once, and endpoint addresses judged when saved exactly as when sent.

1. ``OUTBOUND_TIMEOUT`` covers connecting, headers and body together: servers on 127.0.0.1 that
   drip the body, drip the headers or never answer (``tests/slow_server.py``) are cut at the
   deadline, and the delivery is recorded like any unanswered attempt.
2. ``OUTBOUND_PER_ENDPOINT``: a hanging endpoint holds that many sender threads at most, and
   claiming caps what it has claimed, so a healthy endpoint's messages go meanwhile.
3. ``http://127.1/``, ``http://2130706433/``, ``http://0x7f000001/``, ``http://0177.0.0.1/``,
   ``[::ffff:127.0.0.1]``, an IPv6 ULA ... are refused when an endpoint is created or changed
   (API and page form), as sending refuses them, unless ``OUTBOUND_ALLOWLIST`` opens them.
"""
from __future__ import annotations

import base64
import os
import time

import pytest
from sqlalchemy import select

from scheduler.auth.models import Role
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.sms.base import SmsMessage, provider_from_config, timeout_from
from scheduler.extensions import db
from scheduler.reminders import sender
from scheduler.reminders.dispatch import queue_ping
from scheduler.reminders.models import Delivery
from scheduler.reminders.workers import SenderPool
from scheduler.util import http
from tests.factories import auth, create_city, create_org, create_user
from tests.outbox import fresh
from tests.pages import html, session_token, signed_in
from tests.slow_server import SlowServer

LOCAL = http.Allowlist.parse(["127.0.0.1/32"])
#: The deadline these tests set, and how much later than it a request may end.
DEADLINE, SLACK = 1.0, 0.5
#: The deadline of the tests that check what is recorded (not how long it took).
SHORT = 0.4


@pytest.fixture
def outbound(app, monkeypatch):
    """A 1-second ``OUTBOUND_TIMEOUT``, 127.0.0.1 allowed; kept connections closed afterwards."""
    monkeypatch.setitem(app.config, "OUTBOUND_TIMEOUT", DEADLINE)
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWLIST", ["127.0.0.1/32"])
    yield app.config
    http.forget_connections()


def make_endpoint(org, url: str, kind: str = "webhook") -> WebhookEndpoint:
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode() if kind == "webhook" else ""
    endpoint = WebhookEndpoint(org_id=org.id, kind=kind, url=url, secret=secret, kinds=[], org_ids=[], types=[])
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


# ------------------------------------------------------------------------------ 1. the deadline

@pytest.mark.parametrize("mode, keep_alive", [("drip_body", True), ("drip_headers", False), ("silent", True)])
def test_one_deadline_covers_connecting_headers_and_body(ctx, outbound, mode, keep_alive):
    """A byte every 0.3 s never trips a per-read timeout; the deadline cuts the exchange anyway
    (on a connection a sender keeps, and on one used once)."""
    with SlowServer(mode, interval=0.3) as server:
        started = time.monotonic()
        with pytest.raises(http.NoAnswer, match=r"No complete answer within 1 s \(connecting, headers and body together\)"):
            http.safe_request("POST", server.url(), data=b"{}", keep_alive=keep_alive)
        assert DEADLINE - 0.05 <= time.monotonic() - started < DEADLINE + SLACK
        assert server.requests == [b"POST /hook HTTP/1.1"]


def test_a_kept_connection_is_not_cut_after_its_request_and_a_cut_one_is_not_reused(ctx, outbound, receiver):
    """Fast requests on the kept connection outlive the deadline of the first; after a cut, a new connection."""
    for _ in range(3):
        answer = http.safe_request("GET", receiver.url(), keep_alive=True, timeout=0.2, ok_statuses=range(100, 600))
        assert answer.status == 401  # (unsigned: the receiver refuses it, on the same kept connection)
        time.sleep(0.1)  # (the wall clock: the deadline of the earlier request passes meanwhile)
    with SlowServer("drip_body") as server:
        for _ in range(2):
            with pytest.raises(http.NoAnswer):
                http.safe_request("GET", server.url(), keep_alive=True, timeout=0.2)
        assert server.connections == 2


def test_a_dripping_webhook_is_cut_and_retried(app, ctx, outbound, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_TIMEOUT", SHORT)
    with SlowServer("drip_body") as server:
        endpoint = make_endpoint(create_org("wyu"), server.url())
        delivery_id = queue_ping(endpoint)
        db.session.commit()
        started = time.monotonic()
        assert sender.run_once() == 1
        assert time.monotonic() - started < SHORT + SLACK
    delivery = db.session.get(Delivery, delivery_id)
    db.session.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.last_error.startswith("No complete answer within 0.4 s")


def test_a_robot_dripping_its_headers_is_cut_and_retried(app, ctx, outbound, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_TIMEOUT", SHORT)
    with SlowServer("drip_headers") as server:
        endpoint = make_endpoint(create_org("wyu"), server.url("/cgi-bin/webhook/send?key=k"), kind="wecom")
        delivery_id = queue_ping(endpoint)
        db.session.commit()
        started = time.monotonic()
        sender.run_once()
        assert time.monotonic() - started < SHORT + SLACK
    delivery = db.session.get(Delivery, delivery_id)
    db.session.refresh(delivery)
    assert delivery.status == "retrying" and "No complete answer within 0.4 s" in delivery.last_error


def test_an_sms_gateway_that_never_answers_is_unknown_within_outbound_timeout(outbound):
    """Without ``SMS_TIMEOUT`` the SMS providers take ``OUTBOUND_TIMEOUT``; no answer is ``unknown``."""
    with SlowServer("silent") as server:
        config = {"SMS_PROVIDER": "http", "SMS_HTTP_URL": server.url("/send"), "SMS_TIMEOUT": None,
                  "OUTBOUND_TIMEOUT": SHORT, "OUTBOUND_ALLOWLIST": ["127.0.0.1/32"]}
        provider = provider_from_config(config)
        started = time.monotonic()
        [outcome] = provider.send([SmsMessage("01J00000000000000000000001", "+8613800000001", "reminder", {}, "【江门科普】测试")])
        assert time.monotonic() - started < SHORT + SLACK
    assert outcome.status == "unknown" and "No complete answer within 0.4 s" in outcome.reason
    assert timeout_from({"OUTBOUND_TIMEOUT": 7}) == 7 and timeout_from({"SMS_TIMEOUT": "3", "OUTBOUND_TIMEOUT": 7}) == 3
    assert timeout_from({}) == http.DEFAULT_TIMEOUT


def test_outbound_timeout_is_read_from_the_configuration(app, ctx, monkeypatch):
    assert app.config["OUTBOUND_TIMEOUT"] == 10 and http.configured_timeout() == 10
    monkeypatch.setitem(app.config, "OUTBOUND_TIMEOUT", "2.5")
    assert http.configured_timeout() == 2.5
    monkeypatch.setitem(app.config, "OUTBOUND_TIMEOUT", 0)
    with pytest.raises(ValueError, match="OUTBOUND_TIMEOUT must be positive"):
        http.configured_timeout()


# ------------------------------------------------------------------------------ 2. per endpoint

def test_claiming_caps_what_one_endpoint_has_claimed(ctx, clock, monkeypatch, app):
    """At most OUTBOUND_PER_ENDPOINT × 4 deliveries of one endpoint are claimed; the others wait, unharmed."""
    monkeypatch.setitem(app.config, "OUTBOUND_PER_ENDPOINT", 1)
    org = create_org("wyu")
    slow, healthy = make_endpoint(org, "https://slow.example.org/"), make_endpoint(org, "https://ok.example.org/")
    for _ in range(10):
        queue_ping(slow)
    clock.advance(seconds=1)  # the healthy endpoint's messages come after the whole backlog
    for _ in range(2):
        queue_ping(healthy)
    db.session.commit()

    def claimed(taken: sender.Claim) -> list[int]:
        return sorted(o.recipient.endpoint_id for o in taken.outgoing)

    first = sender.claim(100)
    assert claimed(first) == sorted([slow.id] * 4 + [healthy.id] * 2)
    assert sender.claim(100).claimed == 0  # the slow endpoint is at its cap: its backlog is not touched
    done = [o for o in first.outgoing if o.recipient.endpoint_id == slow.id][:3]
    sender.record(first.token, [(o, sender.Retry("timed out")) for o in done])
    assert claimed(sender.claim(100)) == [slow.id] * 3
    statuses = db.session.scalars(select(Delivery.status).where(Delivery.endpoint_id == slow.id)).all()
    assert sorted(statuses) == ["pending"] * 3 + ["retrying"] * 3 + ["sending"] * 4  # none lost, none sent twice
    monkeypatch.setitem(app.config, "OUTBOUND_PER_ENDPOINT", 0)  # 0: no cap
    assert sender.claim(100).claimed == 3


def test_a_hanging_endpoint_does_not_hold_every_sender_thread(app, ctx, clock, monkeypatch, outbound, receiver):
    """4 sender threads, 6 messages queued first to an endpoint that never answers, then 3 to a healthy one:
    the healthy one's arrive well before the hanging requests' deadline."""
    monkeypatch.setitem(app.config, "OUTBOUND_PER_ENDPOINT", 1)
    org = create_org("wyu")
    with SlowServer("silent") as hanging:
        stuck = make_endpoint(org, hanging.url())
        stuck_ids = [queue_ping(stuck) for _ in range(6)]
        clock.advance(seconds=1)
        healthy = make_endpoint(org, receiver.url("/healthy"))
        receiver.secrets.append(healthy.secret)
        healthy_ids = [queue_ping(healthy) for _ in range(3)]
        db.session.commit()
        pool = SenderPool(app, 4, poll_interval=0.05, name="test-sender")
        pool.start()  # (the pool's thread uses the database alone until it stops)
        try:
            arrived = receiver.wait_for(3, timeout=DEADLINE * 0.7)
            hung = hanging.connections
        finally:
            pool.stop(timeout=10)
    assert arrived, "the healthy endpoint's messages waited behind the hanging one"
    assert hung == 1  # one request at a time to the hanging endpoint
    assert [fresh(db.session.get(Delivery, i)).status for i in healthy_ids] == ["sent"] * 3
    stuck_rows = [fresh(db.session.get(Delivery, i)) for i in stuck_ids]
    assert sorted(d.status for d in stuck_rows) == ["pending"] * 5 + ["retrying"]  # given back, or tried once
    [tried] = [d for d in stuck_rows if d.status == "retrying"]
    assert tried.attempts == 1 and tried.last_error.startswith("No complete answer within 1 s")


# ------------------------------------------------------------------------------ 3. addresses when saved

#: Loopback, private and special addresses in the forms a connection reads them in.
SPECIAL = [
    "http://127.1/hook", "http://2130706433/hook", "http://0x7f000001/hook", "http://0177.0.0.1/hook",
    "http://0x7f.1/", "http://127.0.0.1./hook", "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:7f00:1]/",
    "http://[fd00::1]/hook", "http://[fc00::1]:8443/", "http://[fe80::1]/", "http://167772161/hook",  # 10.0.0.1
    "http://0/", "http://[::]/", "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data",  # 169.254.169.254
]


@pytest.fixture
def city(ctx):
    return create_city()


@pytest.mark.parametrize("url", SPECIAL)
def test_special_addresses_are_refused_when_created_as_when_sent(client, city, url):
    with pytest.raises(http.UnsafeURL, match="not a public address"):
        http.check_url(url, http.Allowlist.parse([]))
    editor = create_user(Role.EDITOR, city["xinhui"])
    for body in ({"url": url}, {"url": url, "kind": "wecom"}):
        response = client.post("/api/v1/webhooks", json=body, headers=auth(editor))
        assert response.status_code == 422, response.json
        assert "not a public address" in response.json["error"]["fields"]["url"]
    assert db.session.scalar(select(WebhookEndpoint.id)) is None


def test_changing_the_address_to_a_special_one_is_refused(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    created = client.post("/api/v1/webhooks", json={"url": "https://partner.example.org/hook"}, headers=auth(editor)).json
    for url in ("http://0x7f000001/", "http://127.1/", "http://[::ffff:10.0.0.1]/"):
        response = client.patch(f"/api/v1/webhooks/{created['id']}", json={"url": url}, headers=auth(editor))
        assert response.status_code == 422 and "url" in response.json["error"]["fields"]
    assert db.session.get(WebhookEndpoint, created["id"]).url == "https://partner.example.org/hook"


@pytest.mark.parametrize("url, host", [
    ("http://127.1/hook", "127.1"), ("http://2130706433/hook", "2130706433"), ("http://0x7f000001/hook", "0x7f000001"),
    ("http://0177.0.0.1/hook", "0177.0.0.1"), ("http://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1"),
    ("http://[fd12:3456::1]/hook", "fd12:3456::1"),
])
def test_the_page_form_refuses_them_next_to_the_field(client, city, url, host):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    token = session_token(client, "/organizer/deliveries")
    for kind in ("webhook", "dingtalk"):
        response = client.post("/organizer/endpoints/new", data={"csrf_token": token, "org": "xinhui", "kind": kind, "url": url})
        page = html(response, 422)
        assert f"{host} 不是公网地址：消息只发送到公网地址。" in page
    assert db.session.scalar(select(WebhookEndpoint.id)) is None


def test_the_allow_list_opens_them_when_saved_as_when_sent(app, client, city, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOUND_ALLOWLIST", ["127.0.0.1/32"])
    editor = create_user(Role.EDITOR, city["xinhui"])
    for url in ("http://127.1:8080/hook", "http://0x7f000001/hook", "http://[::ffff:127.0.0.1]:8080/hook"):
        assert http.check_url(url, LOCAL).address == "127.0.0.1"
        response = client.post("/api/v1/webhooks", json={"url": url}, headers=auth(editor))
        assert response.status_code == 201, response.json
    assert client.post("/api/v1/webhooks", json={"url": "http://127.2/"}, headers=auth(editor)).status_code == 422
