"""Webhook URLs are given by users: outgoing requests reach public addresses only.

Refused at send time (the address is checked at every send, not only when the endpoint
is saved): private, loopback, link-local, CGNAT, unspecified, IPv4-mapped and names
resolving to any of them, unless ``OUTBOUND_ALLOWLIST`` opens them. Redirects are not
followed. A spy on urllib3's ``create_connection`` shows that nothing connects.
"""
from __future__ import annotations

import base64
import os
import socket

import pytest
import urllib3.util.connection
from sqlalchemy import select

from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.reminders.dispatch import queue_ping
from scheduler.reminders.models import Delivery
from scheduler.reminders.sender import run_once
from scheduler.util import http
from scheduler.util.http import Allowlist, UnsafeURL, check_url
from tests.factories import create_org
from tests.receiver import Answer


@pytest.fixture
def allowlist(app):
    """Set ``OUTBOUND_ALLOWLIST`` (empty to start with); restored afterwards, kept connections closed."""
    saved = app.config.get("OUTBOUND_ALLOWLIST")
    app.config["OUTBOUND_ALLOWLIST"] = []
    yield app.config
    app.config["OUTBOUND_ALLOWLIST"] = saved
    http.forget_connections()


@pytest.fixture
def connections(monkeypatch):
    """Every address urllib3 connects to (the connection is still made)."""
    made = []
    original = urllib3.util.connection.create_connection

    def spy(address, *args, **kwargs):
        made.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", spy)
    return made


@pytest.fixture
def dns(monkeypatch):
    """Fake DNS answers: ``dns["name"] = ["10.1.2.3"]`` (a list is answered in turn, the last one repeats)."""
    answers: dict[str, list[str]] = {}
    original = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, str) and host in answers:
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            af = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(af, socket.SOCK_STREAM, 6, "", (address, port))]
        return original(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def org(ctx):
    return create_org("wyu")


def ping(org, url: str, receiver=None) -> Delivery:
    """Queue a ping to a new endpoint at ``url``, run the sender, and return the delivery."""
    endpoint = WebhookEndpoint(org_id=org.id, url=url, secret="whsec_" + base64.b64encode(os.urandom(24)).decode(),
                               kinds=[], org_ids=[], types=[])
    db.session.add(endpoint)
    db.session.commit()
    if receiver is not None:
        receiver.secrets.append(endpoint.secret)
    delivery_id = queue_ping(endpoint)
    db.session.commit()
    run_once()
    db.session.expire_all()
    return db.session.get(Delivery, delivery_id)


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
    "http://internal.example/hook",
    "https://internal.example/hook",
])
def test_private_addresses_are_refused_at_send_time(org, allowlist, connections, dns, url):
    dns["internal.example"] = ["10.1.2.3"]
    delivery = ping(org, url)
    assert delivery.status == "dead" and delivery.attempts == 1
    assert "not a public address" in delivery.last_error
    assert connections == []


def test_a_name_resolving_to_loopback_is_refused_although_a_receiver_listens(org, allowlist, connections, receiver):
    delivery = ping(org, receiver.url().replace("127.0.0.1", "localhost"), receiver)
    assert delivery.status == "dead" and "not a public address" in delivery.last_error
    assert connections == [] and receiver.messages == [] and receiver.rejected == []


def test_the_address_is_checked_at_every_send_not_when_saved(org, allowlist, connections, dns, receiver):
    """A name that pointed at an allowed address and now points inside is refused at the next send."""
    allowlist["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    dns["partner.example"] = ["127.0.0.1"]
    url = receiver.url().replace("127.0.0.1", "partner.example")
    assert ping(org, url, receiver).status == "sent"
    assert receiver.messages[0].headers["host"] == f"partner.example:{receiver.port}"
    dns["partner.example"] = ["10.9.9.9"]
    delivery = ping(org, url, receiver)
    assert delivery.status == "dead" and "10.9.9.9" in delivery.last_error
    assert [address for address, _ in connections] == ["127.0.0.1"] and len(receiver.messages) == 1


def test_a_changed_dns_answer_cannot_redirect_the_connection(org, allowlist, connections, dns, receiver):
    """DNS rebinding: the connection goes to the address that was checked, whatever a second lookup says."""
    allowlist["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    dns["rebind.example"] = ["127.0.0.1", "10.0.0.1"]
    delivery = ping(org, receiver.url().replace("127.0.0.1", "rebind.example"), receiver)
    assert delivery.status == "sent"
    assert [address for address, _ in connections] == ["127.0.0.1"]
    assert receiver.messages[0].headers["host"] == f"rebind.example:{receiver.port}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(org, allowlist, connections, receiver, status):
    allowlist["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    receiver.respond(Answer(status, {"Location": "http://10.0.0.1/"}))
    delivery = ping(org, receiver.url(), receiver)
    assert (delivery.status, delivery.last_status_code) == ("retrying", status)
    assert "redirect" in delivery.last_error and "not followed" in delivery.last_error
    assert [address for address, _ in connections] == ["127.0.0.1"]
    assert len(receiver.messages) == 1


def test_the_allowlist_opens_chosen_hosts_and_ranges_only(org, allowlist, connections, dns, receiver):
    dns["intranet.example"] = ["127.0.0.1"]
    allowlist["OUTBOUND_ALLOWLIST"] = "intranet.example"  # a comma-separated string as from the environment
    intranet = receiver.url().replace("127.0.0.1", "intranet.example")
    assert ping(org, intranet, receiver).status == "sent"
    assert ping(org, receiver.url(), receiver).status == "dead"  # the address itself is not opened
    allowlist["OUTBOUND_ALLOWLIST"] = ["127.0.0.0/8"]
    assert ping(org, receiver.url(), receiver).status == "sent"
    assert len(receiver.messages) == 2 and receiver.rejected == []


NONE = Allowlist.parse([])


@pytest.mark.parametrize("host", [
    "100.64.0.1", "100.127.255.254",  # CGNAT
    "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]",  # IPv4-mapped
    "0.0.0.0", "[::]",  # unspecified
    "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "[::1]", "[fe80::1]", "[fc00::1]",
    "198.18.0.1", "224.0.0.1", "255.255.255.255", "[2002:7f00:1::]", "[64:ff9b::a00:1]",
])
def test_check_url_refuses_special_addresses(host):
    with pytest.raises(UnsafeURL, match="not a public address"):
        check_url(f"http://{host}/hook", NONE)


def test_check_url_accepts_public_addresses_and_pins_them():
    target = check_url("https://93.184.215.14:8443/hook?x=1", NONE)
    assert (target.address, target.host, target.host_header) == ("93.184.215.14", "93.184.215.14", "93.184.215.14:8443")
    assert check_url("http://[2606:4700:4700::1111]/", NONE).address == "2606:4700:4700::1111"


def test_check_url_allowlist_judges_mapped_addresses_as_ipv4():
    assert check_url("http://[::ffff:127.0.0.1]:8080/", Allowlist.parse(["127.0.0.1/32"])).address == "127.0.0.1"
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.2/", Allowlist.parse(["127.0.0.1/32"]))


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/", "file:///etc/passwd", "http://user:pw@93.184.215.14/", "gopher://x/"])
def test_check_url_refuses_other_schemes_and_credentials(url):
    with pytest.raises(UnsafeURL):
        check_url(url, NONE)


def test_no_delivery_row_is_left_sending(org, allowlist, dns):
    dns["internal.example"] = ["10.1.2.3"]
    ping(org, "http://internal.example/")
    assert db.session.scalars(select(Delivery.status)).all() == ["dead"]
