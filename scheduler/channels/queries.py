"""Reading webhook endpoints as a user may see them: one rule for the API and the organizers' pages."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.auth.models import User
from scheduler.auth.permissions import readable_org_ids
from scheduler.channels.models import WebhookEndpoint
from scheduler.events.queries import MAX_ID
from scheduler.extensions import db


def visible_endpoint(user: User, endpoint_id: int) -> WebhookEndpoint | None:
    """The endpoint when it belongs to an organization ``user`` may read; ``None`` otherwise (a 404)."""
    row = db.session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id <= MAX_ID else None
    readable = readable_org_ids(user)
    if row is None or (readable is not None and row.org_id not in readable):
        return None
    return row


def visible_endpoints(user: User) -> list[WebhookEndpoint]:
    """The endpoints of the organizations ``user`` may read (every one for administrators), by id."""
    readable = readable_org_ids(user)
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if readable is not None:
        stmt = stmt.where(WebhookEndpoint.org_id.in_(readable))
    return list(db.session.scalars(stmt))
