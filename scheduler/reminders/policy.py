"""Retry policy per channel: when to try again, when to give up (channels only report).

A schedule lists the delay before each attempt; the first is the immediate one, and
after the last the delivery is ``dead``. A little jitter (up to 10 % later, never
earlier) keeps a recovering receiver from getting every retry in the same second.
"""
from __future__ import annotations

import datetime as dt
import random

from flask import current_app, has_app_context

from scheduler.channels.robots import RETRY_DELAYS as ROBOT_RETRY_DELAYS
from scheduler.reminders.models import DeliveryStatus

_S, _M, _H = dt.timedelta(seconds=1), dt.timedelta(minutes=1), dt.timedelta(hours=1)

#: Delay before attempt 1, 2, ...: Standard Webhooks' (Svix's) schedule for webhooks.
RETRY_SCHEDULES: dict[str, tuple[dt.timedelta, ...]] = {
    "webhook": (0 * _S, 5 * _S, 5 * _M, 30 * _M, 2 * _H, 5 * _H, 10 * _H, 10 * _H),
    "sms": (0 * _S, 1 * _M, 10 * _M),
    # chat robots: the last wait outlasts DingTalk's 10-minute throttle
    **{kind: ROBOT_RETRY_DELAYS for kind in ("wecom", "dingtalk", "feishu")},
}
#: What a claim whose lease ran out becomes: webhooks are idempotent (same ``webhook-id``),
#: so they are tried again; an SMS may have gone out, so it is never re-sent blindly.
RECLAIMED_AS: dict[str, str] = {"webhook": DeliveryStatus.RETRYING.value, "sms": DeliveryStatus.UNKNOWN.value,
                                 "wecom": DeliveryStatus.RETRYING.value, "dingtalk": DeliveryStatus.RETRYING.value,
                                 "feishu": DeliveryStatus.RETRYING.value}
#: How long a claim lasts by default (``DELIVERY_LEASE_SECONDS``): well over a send's
#: timeout, so only a sender that died loses its claims.
LEASE = dt.timedelta(seconds=60)
#: An endpoint failing this long without a single success is disabled.
DISABLE_ENDPOINT_AFTER = dt.timedelta(days=5)
JITTER = 0.1
#: Requests one endpoint gets at once by default (``OUTBOUND_PER_ENDPOINT``; 0: no cap).
PER_ENDPOINT = 2
#: Deliveries an endpoint may have claimed (sending or queued in a sender) per request it may get at
#: once (and per message of a digest): enough to keep its requests going between the senders' rounds,
#: few enough that a slow endpoint's backlog never fills a sender's queue.
CLAIMED_PER_REQUEST = 4


def per_endpoint() -> int:
    """Requests one webhook or robot endpoint gets at once: ``OUTBOUND_PER_ENDPOINT`` (0: no cap)."""
    if has_app_context():
        return max(int(current_app.config.get("OUTBOUND_PER_ENDPOINT", PER_ENDPOINT)), 0)
    return PER_ENDPOINT


def lease() -> dt.timedelta:
    """How long a claim lasts: ``DELIVERY_LEASE_SECONDS`` of the application, else :data:`LEASE`."""
    if has_app_context():
        return dt.timedelta(seconds=float(current_app.config.get("DELIVERY_LEASE_SECONDS", LEASE.total_seconds())))
    return LEASE


def next_attempt_at(channel: str, attempts: int, at: dt.datetime, not_before: dt.datetime | None = None) -> dt.datetime | None:
    """When to try again after ``attempts`` failed attempts, or ``None`` when it is time to give up."""
    schedule = RETRY_SCHEDULES[channel]
    if attempts >= len(schedule):
        return None
    delay = schedule[attempts]
    when = at + delay + delay * random.uniform(0, JITTER)
    return max(when, not_before) if not_before else when
