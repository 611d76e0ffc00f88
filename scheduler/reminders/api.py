"""The delivery log: what was sent to whom, how it went, and replay."""
from __future__ import annotations

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import NotFound
from scheduler.auth.models import Role
from scheduler.auth.permissions import readable_org_ids, require_role, require_user
from scheduler.channels.schemas import DeliveryOut, DeliveryPage, DeliveryQuery, Queued, ReminderRef
from scheduler.extensions import db
from scheduler.reminders import operations
from scheduler.reminders.models import WAITING, Delivery, Reminder
from scheduler.reminders.queries import delivery_log, visible_delivery


def _present(delivery: Delivery, recipient: str, reminder: Reminder | None) -> DeliveryOut:
    waiting = delivery.status in WAITING
    return DeliveryOut(
        id=delivery.id, type=delivery.type, channel=delivery.channel, status=delivery.status, recipient=recipient,
        event=delivery.event_id, endpoint=delivery.endpoint_id,
        reminder=ReminderRef.model_validate(reminder) if reminder else None, attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if waiting else None, not_after=delivery.not_after,
        last_error=delivery.last_error, last_status_code=delivery.last_status_code, sent_at=delivery.sent_at,
        created_at=delivery.created_at, updated_at=delivery.updated_at,
    )


@endpoint(bp, "/deliveries", summary="The delivery log", tag="deliveries", query=DeliveryQuery, response=DeliveryPage)
def list_deliveries(query: DeliveryQuery) -> DeliveryPage:
    """Deliveries to your organizations' endpoints and registrants, newest first; phone numbers masked."""
    entries, total = delivery_log(readable_org_ids(require_user(api_user())), query)
    items = [_present(entry.delivery, entry.recipient, entry.reminder) for entry in entries]
    return DeliveryPage(items=items, page=query.page, per_page=query.per_page, total=total)


@endpoint(bp, "/deliveries/<delivery_id>/replay", "POST", summary="Send a delivery again", tag="deliveries", response=Queued, status=202, errors=(409,))
def replay_delivery(delivery_id: str) -> Queued:
    """Same idempotency key (``webhook-id``), fresh retry schedule. Needs the editor role.
    Refused while it is on its way, after the event started, or while its endpoint is disabled."""
    user = require_user(api_user())
    found = visible_delivery(delivery_id, user)
    if found is None:
        raise NotFound("No such delivery.")
    delivery, owner = found
    require_role(user, owner, Role.EDITOR)
    operations.replay_delivery(delivery)
    db.session.commit()
    return Queued(delivery_id=delivery.id, status=delivery.status)
