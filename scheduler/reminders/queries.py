"""Reading the delivery log: one query for the API (``GET /api/v1/deliveries``) and the organizers' pages."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from scheduler.auth.models import User
from scheduler.auth.permissions import readable_org_ids
from scheduler.channels.models import WebhookEndpoint, display_url
from scheduler.channels.schemas import DeliveryQuery
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.registrations.models import Registration
from scheduler.reminders.models import Delivery, Reminder
from scheduler.util.phone import mask_phone

_Endpoint = aliased(WebhookEndpoint)
_Event = aliased(Event)


@dataclass(frozen=True)
class LogEntry:
    """One delivery as the log shows it."""

    delivery: Delivery
    #: The endpoint's URL as people may see it (a robot's key hidden), or the registrant's masked phone.
    recipient: str
    reminder: Reminder | None
    #: The organization whose members may see it: its endpoint's, else its event's.
    owner_org_id: int | None
    #: Whether its endpoint is enabled (``None`` when it goes to a registrant).
    endpoint_enabled: bool | None
    event_title: str | None


def recipient_label(kind: str | None, url: str | None, phone: str | None) -> str:
    """Whom a delivery goes to, safe to show: :func:`display_url` of an endpoint, or a masked phone number."""
    return display_url(kind or "webhook", url) if url is not None else (mask_phone(phone) if phone else "")


def delivery_log(readable: set[int] | None, query: DeliveryQuery) -> tuple[list[LogEntry], int]:
    """One page of the deliveries to the endpoints and registrants of the organizations in ``readable``
    (``None``: all of them), filtered as ``query`` says, newest first; and how many match in all."""
    stmt = (
        select(Delivery, _Endpoint.kind, _Endpoint.url, Registration.phone, Reminder,
               _Endpoint.org_id, _Endpoint.enabled, _Event.org_id, _Event.title)
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
    newest_first = stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc())
    rows = db.session.execute(newest_first.offset((query.page - 1) * query.per_page).limit(query.per_page)).all()
    entries = [
        LogEntry(
            delivery=delivery, recipient=recipient_label(kind, url, phone), reminder=reminder,
            owner_org_id=endpoint_org if delivery.endpoint_id is not None else event_org,
            endpoint_enabled=enabled if delivery.endpoint_id is not None else None, event_title=title,
        )
        for delivery, kind, url, phone, reminder, endpoint_org, enabled, event_org, title in rows
    ]
    return entries, total


def owner_org(delivery: Delivery) -> int | None:
    """The organization whose members may see a delivery: its endpoint's, else its event's."""
    if delivery.endpoint_id is not None:
        row = db.session.get(WebhookEndpoint, delivery.endpoint_id)
        return row.org_id if row else None
    event = db.session.get(Event, delivery.event_id) if delivery.event_id else None
    return event.org_id if event else None


def visible_delivery(delivery_id: str, user: User) -> tuple[Delivery, int] | None:
    """The delivery and its owning organization when ``user`` may read it; ``None`` otherwise (a 404)."""
    delivery = db.session.get(Delivery, delivery_id) if len(delivery_id) == 26 else None
    owner = owner_org(delivery) if delivery is not None else None
    readable = readable_org_ids(user)
    if delivery is None or owner is None or (readable is not None and owner not in readable):
        return None
    return delivery, owner
