"""Changes to deliveries that people ask for (flush, never commit)."""
from __future__ import annotations

from scheduler.api.errors import Conflict
from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.reminders import wakeup
from scheduler.reminders.models import FINAL, Delivery, DeliveryStatus
from scheduler.util.time import now


def replay_delivery(delivery: Delivery) -> None:
    """Send a finished delivery again, with the same idempotency key and a fresh retry schedule.

    Refused (409) while it is still waiting or being sent, once the moment it was for
    has passed (the event started), and while its endpoint is disabled.
    """
    if delivery.status not in FINAL:
        raise Conflict(f"The delivery is {delivery.status}: it is still on its way.", code="not_finished")
    at = now()
    if delivery.not_after is not None and delivery.not_after <= at:
        raise Conflict("The moment this message was for has passed (the event has started).", code="too_late")
    if delivery.endpoint_id is not None:
        endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is not None and not endpoint.enabled:
            raise Conflict("The endpoint is disabled; enable it first.", code="endpoint_disabled")
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING.value, 0, at
    delivery.last_error, delivery.last_status_code, delivery.sent_at = None, None, None
    delivery.leased_by = delivery.lease_until = None
    delivery.updated_at = at
    db.session.flush()
    wakeup.deliveries_queued(db.session)
