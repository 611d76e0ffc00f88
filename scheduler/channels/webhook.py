"""The webhook channel: Standard Webhooks signed POSTs to partner systems.

The body is ``{"type", "timestamp", "data", "unsubscribe"}``: the last is a link where the
endpoint's messages are stopped. Headers ``webhook-id`` (the delivery's id: the same on
every attempt and on replay),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``, made by the
``standardwebhooks`` package; two signatures while a rotated secret is still honoured).
Only a 2xx answer is success; 410 Gone asks us to stop; ``Retry-After`` is passed on.
The request goes through :mod:`scheduler.util.http`: public addresses only (unless
allow-listed), checked at every send, no redirects, one deadline for the whole request
(``OUTBOUND_TIMEOUT``, 10 s by default).
"""
from __future__ import annotations

import datetime as dt
import email.utils
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from scheduler.channels.base import Failed, Outgoing, Result, Retry, Sent, Skip
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.sms.links import unsubscribe_url
from scheduler.reminders import messages
from scheduler.util import http
from scheduler.util.time import UTC, now

#: Answers are read only to free the connection; nobody needs more of them.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookTarget:
    """Where and with which secrets one delivery is sent."""

    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    #: The application's ``OUTBOUND_ALLOWLIST``, read when claimed (senders run outside the app).
    allowlist: http.Allowlist
    #: Where the endpoint's owner (or whoever reads its messages) stops them.
    unsubscribe: str = ""
    #: The application's ``OUTBOUND_TIMEOUT``: seconds the whole request may take.
    timeout: float = http.DEFAULT_TIMEOUT


def signing_secrets(endpoint: WebhookEndpoint, at: dt.datetime) -> tuple[str, ...]:
    """The current secret, and the previous one while its 24 hours after a rotation last."""
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > at:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def sign(msg_id: str, timestamp: dt.datetime, body: str, secrets: tuple[str, ...]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (``timestamp`` must be UTC)."""
    signatures = " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }


def retry_after(value: str | None) -> dt.datetime | None:
    """Read ``Retry-After`` (seconds or an HTTP date) as a moment on the application's clock."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now() + dt.timedelta(seconds=min(int(value), 7 * 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return now() + max(when - dt.datetime.now(UTC), dt.timedelta(0))


def with_unsubscribe(body: str, link: str) -> str:
    """The message's body with this endpoint's ``"unsubscribe"`` link as its last member (the stored
    body is shared by every endpoint, so the link is added to the text, not re-serialised)."""
    if not link:
        return body
    return body[:-1] + ',"unsubscribe":' + json.dumps(link) + "}"


class WebhookChannel:
    """Sends deliveries whose recipient is a webhook endpoint."""

    name = "webhook"

    def recipients(self, session: Session, deliveries: list[Any]) -> dict[str, Any]:
        """Each delivery's endpoint URL and secrets; a disabled or deleted endpoint is skipped."""
        ids = {d.endpoint_id for d in deliveries}
        endpoints = {e.id: e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))}
        at, found, allowlist, timeout = now(), {}, http.configured_allowlist(), http.configured_timeout()
        for delivery in deliveries:
            endpoint = endpoints.get(delivery.endpoint_id)
            if endpoint is None:
                found[delivery.id] = Skip("The endpoint was deleted.")
            elif not endpoint.enabled:
                found[delivery.id] = Skip(f"The endpoint is disabled: {endpoint.disabled_reason or 'by its owner'}.")
            else:
                found[delivery.id] = WebhookTarget(endpoint.id, endpoint.url, signing_secrets(endpoint, at), allowlist,
                                                   unsubscribe_url(endpoint.id), timeout)
        return found

    def send(self, outgoing: Outgoing) -> Result:
        """POST the signed message; classify the answer (policy is the sender's)."""
        target: WebhookTarget = outgoing.recipient
        body = with_unsubscribe(outgoing.body or messages.body(outgoing.type, outgoing.payload), target.unsubscribe)
        # The signature's timestamp is the wall clock of this attempt, as receivers check it
        # against theirs (the message's own time is in the body).
        headers = sign(outgoing.id, dt.datetime.now(UTC), body, target.secrets)
        headers["Content-Type"] = "application/json"
        try:
            answer = http.safe_request(
                "POST", target.url, data=body.encode("utf-8"), headers=headers, timeout=target.timeout,
                max_bytes=MAX_ANSWER_BYTES, ok_statuses=range(100, 600), keep_alive=True, allowlist=target.allowlist,
            )
        except http.UnsafeURL as exc:
            return Failed(str(exc))
        except http.Redirected as exc:
            return Retry(str(exc), status_code=exc.status)
        except http.FetchError as exc:
            return Retry(str(exc))
        if 200 <= answer.status < 300:
            return Sent(answer.status)
        if answer.status == 410:
            return Failed("The endpoint answered 410 Gone: it asked not to be sent to again.", answer.status, gone=True)
        return Retry(f"The endpoint answered {answer.status}.", answer.status, retry_after(answer.headers.get("Retry-After")))
