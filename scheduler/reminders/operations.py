"""Changes to deliveries that people ask for (flush, never commit)."""
from __future__ import annotations

import datetime as dt

from scheduler.api.errors import Conflict
from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.reminders import wakeup
from scheduler.reminders.models import FINAL, Delivery, DeliveryStatus
from scheduler.util.time import now


def replay_refusal(delivery: Delivery, *, endpoint_enabled: bool | None, at: dt.datetime) -> Conflict | None:
    """Why :func:`replay_delivery` would refuse ``delivery`` at ``at`` (the 409 it raises), or ``None``.

    ``endpoint_enabled``: whether its endpoint is enabled (``None`` when it has none).
    """
    if delivery.status not in FINAL:
        return Conflict(f"The delivery is {delivery.status}: it is still on its way.", code="not_finished")
    if delivery.not_after is not None and delivery.not_after <= at:
        return Conflict("The moment this message was for has passed (the event has started).", code="too_late")
    if endpoint_enabled is False:
        return Conflict("The endpoint is disabled; enable it first.", code="endpoint_disabled")
    return None


def replay_delivery(delivery: Delivery) -> None:
    """Send a finished delivery again, with the same idempotency key and a fresh retry schedule.

    Refused (409) while it is still waiting or being sent, once the moment it was for
    has passed (the event started), and while its endpoint is disabled.
    """
    at = now()
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id) if delivery.endpoint_id is not None else None
    refusal = replay_refusal(delivery, endpoint_enabled=endpoint.enabled if endpoint is not None else None, at=at)
    if refusal is not None:
        raise refusal
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING.value, 0, at
    delivery.last_error, delivery.last_status_code, delivery.sent_at = None, None, None
    delivery.leased_by = delivery.lease_until = None
    delivery.updated_at = at
    db.session.flush()
    wakeup.deliveries_queued(db.session)
