"""The delivery log: what was sent to whom, how it went, and replay."""
from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import NotFound
from scheduler.auth.models import Role
from scheduler.auth.permissions import readable_org_ids, require_role, require_user
from scheduler.channels.models import WebhookEndpoint, display_url
from scheduler.channels.schemas import DeliveryOut, DeliveryPage, DeliveryQuery, Queued, ReminderRef
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.registrations.models import Registration
from scheduler.reminders import operations
from scheduler.reminders.models import WAITING, Delivery, Reminder
from scheduler.util.phone import mask_phone

_Endpoint = aliased(WebhookEndpoint)
_Event = aliased(Event)


def _owner_org(delivery: Delivery) -> int | None:
    """The organization whose members may see a delivery: its endpoint's, else its event's."""
    if delivery.endpoint_id is not None:
        row = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        return row.org_id if row else None
    event = db.session.get(Event, delivery.event_id) if delivery.event_id else None
    return event.org_id if event else None


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


def _recipient(kind: str | None, url: str | None, phone: str | None) -> str:
    return display_url(kind or "webhook", url) if url is not None else (mask_phone(phone) if phone else "")


@endpoint(bp, "/deliveries", summary="The delivery log", tag="deliveries", query=DeliveryQuery, response=DeliveryPage)
def list_deliveries(query: DeliveryQuery) -> DeliveryPage:
    """Deliveries to your organizations' endpoints and registrants, newest first; phone numbers masked."""
    readable = readable_org_ids(require_user(api_user()))
    stmt = (
        select(Delivery, _Endpoint.kind, _Endpoint.url, Registration.phone, Reminder)
        .outerjoin(_Endpoint, _Endpoint.id == Delivery.endpoint_id)
        .outerjoin(_Event, _Event.id == Delivery.event_id)
        .outerjoin(Registration, Registration.id == Delivery.registration_id)
        .outerjoin(Reminder, Reminder.id == Delivery.reminder_id)
    )
    if readable is not None:
        stmt = stmt.where(or_(_Endpoint.org_id.in_(readable), (Delivery.endpoint_id.is_(None) & _Event.org_id.in_(readable))))
    if query.status:
        stmt = stmt.where(Delivery.status.in_([s.value for s in query.status]))
    if query.channel:
        stmt = stmt.where(Delivery.channel.in_(query.channel))
    if query.type:
        stmt = stmt.where(Delivery.type.in_(query.type))
    if query.event is not None:
        stmt = stmt.where(Delivery.event_id == query.event)
    if query.endpoint is not None:
        stmt = stmt.where(Delivery.endpoint_id == query.endpoint)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.execute(
        stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc()).offset((query.page - 1) * query.per_page).limit(query.per_page)
    ).all()
    items = [_present(delivery, _recipient(kind, url, phone), reminder) for delivery, kind, url, phone, reminder in rows]
    return DeliveryPage(items=items, page=query.page, per_page=query.per_page, total=total)


@endpoint(bp, "/deliveries/<delivery_id>/replay", "POST", summary="Send a delivery again", tag="deliveries", response=Queued, status=202, errors=(409,))
def replay_delivery(delivery_id: str) -> Queued:
    """Same idempotency key (``webhook-id``), fresh retry schedule. Needs the editor role.
    Refused while it is on its way, after the event started, or while its endpoint is disabled."""
    user = require_user(api_user())
    delivery = db.session.get(Delivery, delivery_id) if len(delivery_id) == 26 else None
    owner = _owner_org(delivery) if delivery is not None else None
    readable = readable_org_ids(user)
    if delivery is None or owner is None or (readable is not None and owner not in readable):
        raise NotFound("No such delivery.")
    require_role(user, owner, Role.EDITOR)
    operations.replay_delivery(delivery)
    db.session.commit()
    return Queued(delivery_id=delivery.id, status=delivery.status)
