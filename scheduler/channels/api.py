"""Webhook endpoints and group robots: create with filters, list with health, change, rotate a
webhook's secret, ping, delete."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import Invalid, NotFound
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import require_role, require_user
from scheduler.channels import operations
from scheduler.channels.models import WebhookEndpoint, display_url
from scheduler.channels.queries import visible_endpoint, visible_endpoints
from scheduler.channels.schemas import (
    EndpointHealth, Queued, SecretOut, WebhookCreate, WebhookCreated, WebhookList, WebhookOut, WebhookUpdate,
)
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug, org_ids_of


def present_webhook(endpoint_row: WebhookEndpoint, slugs: dict[int, str] | None = None) -> WebhookOut:
    """The API form of an endpoint (without its secret)."""
    slugs = slugs if slugs is not None else _slugs()
    return WebhookOut(
        id=endpoint_row.id, org=endpoint_row.org.slug, kind=endpoint_row.kind, url=display_url(endpoint_row.kind, endpoint_row.url),
        description=endpoint_row.description, kinds=endpoint_row.kinds, orgs=[slugs[i] for i in endpoint_row.org_ids if i in slugs],
        types=endpoint_row.types, alerts=endpoint_row.alerts, enabled=endpoint_row.enabled, previous_secret_valid_until=endpoint_row.previous_secret_until,
        health=EndpointHealth.model_validate(endpoint_row), created_at=endpoint_row.created_at, updated_at=endpoint_row.updated_at,
    )


def _slugs() -> dict[int, str]:
    return {org_id: slug for org_id, slug in db.session.execute(select(Organization.id, Organization.slug))}



def _owner(user: User, slug: str | None) -> Organization:
    if slug is not None:
        org = get_org_by_slug(slug)
        if org is None:
            raise Invalid(fields={"org": f"Unknown organization {slug!r}."})
        return org
    editable = [m.org for m in user.memberships if Role(m.role).rank >= Role.EDITOR.rank]
    candidates = editable or [m.org for m in user.memberships]  # a lone viewer membership: the role check answers
    if len(candidates) != 1:
        raise Invalid(fields={"org": "Say which organization owns the endpoint."})
    return candidates[0]


def _visible_endpoint(endpoint_id: int) -> WebhookEndpoint:
    row = visible_endpoint(require_user(api_user()), endpoint_id)
    if row is None:
        raise NotFound("No such webhook endpoint.")
    return row


@endpoint(bp, "/webhooks", "POST", summary="Create a webhook endpoint", tag="webhooks", body=WebhookCreate, response=WebhookCreated, status=201)
def create_webhook(body: WebhookCreate) -> WebhookCreated:
    """Needs the editor role in the owning organization. The signing secret is in this response only
    (``POST /webhooks/<id>/rotate`` makes a new one). An address that is not public is refused (422)."""
    user = require_user(api_user())
    org = _owner(user, body.org)
    require_role(user, org.id, Role.EDITOR)
    row = operations.create_endpoint(
        org, body.url, kind=body.kind.value, secret=body.secret, alerts=body.alerts, description=body.description, kinds=[k.value for k in body.kinds], org_ids=org_ids_of(body.orgs),
        types=[t.value for t in body.types], created_by=user,
    )
    db.session.commit()
    return WebhookCreated(**(present_webhook(row).model_dump() | {"url": row.url}), secret=row.secret)


@endpoint(bp, "/webhooks", summary="List webhook endpoints with their health", tag="webhooks", response=WebhookList)
def list_webhooks() -> WebhookList:
    """Endpoints of the organizations you belong to (and those below them); every one for administrators."""
    rows = visible_endpoints(require_user(api_user()))
    slugs = _slugs()
    return WebhookList(items=[present_webhook(row, slugs) for row in rows])


@endpoint(bp, "/webhooks/<int:endpoint_id>", summary="Read a webhook endpoint", tag="webhooks", response=WebhookOut)
def get_webhook(endpoint_id: int) -> WebhookOut:
    """With its health: last success, consecutive failures, why it was disabled."""
    return present_webhook(_visible_endpoint(endpoint_id))


@endpoint(bp, "/webhooks/<int:endpoint_id>", "PATCH", summary="Change a webhook endpoint", tag="webhooks", body=WebhookUpdate, response=WebhookOut)
def update_webhook(endpoint_id: int, body: WebhookUpdate) -> WebhookOut:
    """Change the URL, filters or description; ``enabled`` turns it off or back on (clearing its failures)."""
    row = _visible_endpoint(endpoint_id)
    require_role(api_user(), row.org_id, Role.EDITOR)
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "description", "kinds", "orgs", "types", "alerts", "enabled"):
        if name in changes and changes[name] is None:
            raise Invalid(fields={name: "This field cannot be null."})
    if "orgs" in changes:
        changes["org_ids"] = org_ids_of(changes.pop("orgs"))
    operations.update_endpoint(row, changes)
    db.session.commit()
    return present_webhook(row)


@endpoint(bp, "/webhooks/<int:endpoint_id>", "DELETE", summary="Delete a webhook endpoint", tag="webhooks", status=204)
def delete_webhook(endpoint_id: int) -> None:
    """Nothing more is sent to it; its delivery log goes with it."""
    row = _visible_endpoint(endpoint_id)
    require_role(api_user(), row.org_id, Role.EDITOR)
    operations.delete_endpoint(row)
    db.session.commit()


@endpoint(bp, "/webhooks/<int:endpoint_id>/rotate", "POST", summary="Rotate the signing secret", tag="webhooks", response=SecretOut, errors=(409,))
def rotate_webhook_secret(endpoint_id: int) -> SecretOut:
    """A new secret signs from now on; the previous one signs as well for 24 hours (two signatures)."""
    row = _visible_endpoint(endpoint_id)
    require_role(api_user(), row.org_id, Role.EDITOR)
    secret = operations.rotate_secret(row)
    db.session.commit()
    assert row.previous_secret_until is not None
    return SecretOut(secret=secret, previous_secret_valid_until=row.previous_secret_until)


@endpoint(bp, "/webhooks/<int:endpoint_id>/test", "POST", summary="Send a test ping", tag="webhooks", response=Queued, status=202, errors=(409,))
def ping_webhook(endpoint_id: int) -> Queued:
    """Queues a signed ``ping`` message; follow it with ``GET /deliveries?endpoint=<id>``."""
    row = _visible_endpoint(endpoint_id)
    require_role(api_user(), row.org_id, Role.EDITOR)
    delivery_id = operations.ping(row)
    db.session.commit()
    return Queued(delivery_id=delivery_id, status="pending")
