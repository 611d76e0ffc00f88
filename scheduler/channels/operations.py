"""Managing webhook endpoints: create, change, rotate the secret, delete, ping (flush, never commit)."""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import flag_modified

from scheduler.api.errors import Conflict, Invalid
from scheduler.auth.models import User
from scheduler.audit.operations import record
from scheduler.channels.models import EndpointKind, WebhookEndpoint, display_url
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.reminders.models import WAITING, Delivery, DeliveryStatus
from scheduler.util import http
from scheduler.util.time import now

#: How long the secret before a rotation still signs (both signatures are sent).
ROTATION_OVERLAP = dt.timedelta(hours=24)
#: Why :func:`check_endpoint_url` refuses a URL (the pages show each in their own language).
URL_NOT_HTTP = "Give an http:// or https:// URL with a host."
URL_WITH_CREDENTIALS = "Put no user name or password in the URL; the signature authenticates us."
URL_NOT_PUBLIC = "{host} is not a public address; webhooks are only sent to public addresses."
#: Why a webhook is given no secret of its own.
WEBHOOK_SECRET_MADE = "A webhook's secret is made for it; rotate it to get a new one."


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_endpoint_url(url: str) -> str:
    """Refuse a URL that is not http(s), or whose host is a non-public address outright.

    Host names are resolved (and checked again) at every send, where DNS can change; an
    address written in the URL, in any form a connection would read as one (``127.1``,
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``), or ``localhost``,
    is judged here exactly as sending judges it (:func:`scheduler.util.http.host_refusal`),
    so it is refused at once unless ``OUTBOUND_ALLOWLIST`` opens it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(fields={"url": URL_NOT_HTTP})
    if parts.username or parts.password:
        raise Invalid(fields={"url": URL_WITH_CREDENTIALS})
    host = parts.hostname.rstrip(".").lower()
    address = http.literal_address(host)
    if address is None and (host == "localhost" or host.endswith(".localhost")):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None and http.host_refusal(host, address, http.configured_allowlist()):
        raise Invalid(fields={"url": URL_NOT_PUBLIC.format(host=host)})
    return url


def create_endpoint(org: Organization, url: str, *, kind: str = EndpointKind.WEBHOOK, secret: str | None = None,
                    alerts: bool = False, description: str = "", kinds: list[str] | None = None,
                    org_ids: list[int] | None = None, types: list[str] | None = None, created_by: User | None = None) -> WebhookEndpoint:
    """Create an endpoint owned by ``org``: a webhook (its secret made here, readable once) or a
    group robot (its own signing secret, if it has one)."""
    if kind == EndpointKind.WEBHOOK and secret:
        raise Invalid(fields={"secret": WEBHOOK_SECRET_MADE})
    endpoint = WebhookEndpoint(
        org_id=org.id, kind=EndpointKind(kind).value, url=check_endpoint_url(url), description=description,
        secret=new_webhook_secret() if kind == EndpointKind.WEBHOOK else (secret or ""), alerts=alerts,
        kinds=sorted(set(kinds or [])), org_ids=sorted(set(org_ids or [])), types=sorted(set(types or [])),
        enabled=True, consecutive_failures=0, created_by_id=created_by.id if created_by else None,
        created_at=now(), updated_at=now(),
    )
    db.session.add(endpoint)
    db.session.flush()
    _audit("endpoint.create", endpoint)
    return endpoint


def _audit(action: str, endpoint: WebhookEndpoint, **detail: Any) -> None:
    """Record a change of an endpoint (its URL as people may see it: a robot's key is a credential)."""
    record(action, f"endpoint:{endpoint.id}", org_id=endpoint.org_id,
           detail={"kind": endpoint.kind, "url": display_url(endpoint.kind, endpoint.url), **detail})


def update_endpoint(endpoint: WebhookEndpoint, changes: dict[str, Any]) -> None:
    """Change the URL, description, filters, or enable/disable an endpoint.

    Enabling clears the failure history; disabling cancels its waiting deliveries.
    """
    watched = ("url", "description", "alerts", "secret", "kinds", "org_ids", "types")
    before = {name: getattr(endpoint, name) for name in watched}
    was_enabled = endpoint.enabled
    if "url" in changes:
        endpoint.url = check_endpoint_url(changes["url"])
    for name in ("description", "alerts"):
        if name in changes:
            setattr(endpoint, name, changes[name])
    if "secret" in changes:
        if endpoint.kind == EndpointKind.WEBHOOK:
            raise Invalid(fields={"secret": WEBHOOK_SECRET_MADE})
        endpoint.secret = changes["secret"] or ""
    for name in ("kinds", "org_ids", "types"):
        if name in changes:
            setattr(endpoint, name, sorted(set(changes[name] or [])))
    if changes.get("enabled") is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, None, None
        endpoint.failing_since, endpoint.consecutive_failures = None, 0
    elif changes.get("enabled") is False and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, "Disabled by its owner.", now()
        cancel_waiting_deliveries(endpoint, "The endpoint was disabled by its owner.")
    endpoint.updated_at = now()
    db.session.flush()
    changed = sorted(name for name in watched if getattr(endpoint, name) != before[name])
    if changed:  # what really changed (a form sends every field), by name only: a secret's value never
        was = {"previous_url": display_url(endpoint.kind, before["url"])} if "url" in changed else {}
        _audit("endpoint.update", endpoint, changed=changed, **was)
    if endpoint.enabled != was_enabled:
        _audit("endpoint.enable" if endpoint.enabled else "endpoint.disable", endpoint)


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """Give a webhook a new secret; the old one keeps signing too for 24 hours. Returns the new one."""
    if endpoint.kind != EndpointKind.WEBHOOK:
        raise Conflict("Only webhooks have secrets made here; give a robot its new secret with PATCH.", code="not_a_webhook")
    endpoint.previous_secret, endpoint.previous_secret_until = endpoint.secret, now() + ROTATION_OVERLAP
    endpoint.secret = new_webhook_secret()
    endpoint.updated_at = now()
    db.session.flush()
    _audit("endpoint.rotate", endpoint)
    return endpoint.secret


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries (nothing more is sent to it)."""
    _audit("endpoint.delete", endpoint)
    db.session.delete(endpoint)
    db.session.flush()


def ping(endpoint: WebhookEndpoint) -> str:
    """Queue a ``ping`` message to the endpoint; returns the delivery id to watch."""
    from scheduler.reminders.dispatch import queue_ping  # the dispatcher builds on channels

    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it first.", code="endpoint_disabled")
    return queue_ping(endpoint)


def cancel_waiting_deliveries(endpoint: WebhookEndpoint, reason: str) -> None:
    """Cancel what is still waiting to go to ``endpoint`` (it was disabled); flush."""
    db.session.execute(
        update(Delivery).where(Delivery.endpoint_id == endpoint.id, Delivery.status.in_(WAITING))
        .values(status=DeliveryStatus.CANCELLED.value, last_error=reason, updated_at=now())
    )


def reseal_secrets() -> int:
    """Seal every endpoint's secrets again with the first of ``SECRETS_KEYS`` (after putting a new
    key first); how many endpoints were rewritten. The old key can be dropped afterwards."""
    endpoints = list(db.session.scalars(select(WebhookEndpoint)))
    for endpoint in endpoints:
        flag_modified(endpoint, "secret")
        if endpoint.previous_secret is not None:
            flag_modified(endpoint, "previous_secret")
    db.session.flush()
    return len(endpoints)
