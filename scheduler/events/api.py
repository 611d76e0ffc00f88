"""Event endpoints: thin; parse, check permission, call an operation, present."""
from __future__ import annotations

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import Invalid
from scheduler.auth.models import Role
from scheduler.auth.permissions import require_role
from scheduler.events import operations
from scheduler.events.models import Status
from scheduler.events.presenters import present_event, present_events
from scheduler.events.queries import get_visible_event, list_events
from scheduler.events.schemas import (
    CancelBody, EventCreate, EventListQuery, EventOut, EventPage, EventUpdate, OccurrenceCancelBody, OutcomeBody,
)
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug


def _org_or_422(slug: str) -> Organization:
    org = get_org_by_slug(slug)
    if org is None:
        raise Invalid(fields={"org": f"Unknown organization {slug!r}."})
    return org


@endpoint(bp, "/events", summary="List events", tag="events", query=EventListQuery, response=EventPage, auth="optional")
def list_events_view(query: EventListQuery) -> EventPage:
    """Published, completed and cancelled events for everyone; drafts too for members of their organization."""
    items, total = list_events(query, api_user())
    return EventPage(items=present_events(items), page=query.page, per_page=query.per_page, total=total)


@endpoint(bp, "/events", "POST", summary="Create an event (as a draft)", tag="events", body=EventCreate, response=EventOut, status=201, errors=(409,))
def create_event(body: EventCreate) -> EventOut:
    """Needs the editor or manager role in the organization (or one above it)."""
    org = _org_or_422(body.org)
    user = require_role(api_user(), org.id, Role.EDITOR)
    fields = body.model_dump(exclude={"org", "reminders"}, exclude_unset=True)
    event = operations.create_event(org=org, created_by=user, reminders=body.reminders, **fields)
    db.session.commit()
    return present_event(event)


@endpoint(bp, "/events/<int:event_id>", summary="Read an event", tag="events", response=EventOut, auth="optional")
def get_event(event_id: int) -> EventOut:
    """Drafts are visible only to members of the event's organization."""
    return present_event(get_visible_event(event_id, api_user()))


@endpoint(bp, "/events/<int:event_id>", "PATCH", summary="Change an event", tag="events", body=EventUpdate, response=EventOut, errors=(409,))
def update_event(event_id: int, body: EventUpdate) -> EventOut:
    """Only the fields sent change. Moving the time or place raises ``sequence``."""
    event = get_visible_event(event_id, api_user())
    require_role(api_user(), event.org_id, Role.EDITOR)
    changes = body.model_dump(exclude_unset=True)
    for name in ("title", "org", "starts_at", "all_day", "description", "venue", "address"):
        if name in changes and changes[name] is None:
            raise Invalid(fields={name: "This field cannot be null."})
    new_org = None
    if "org" in changes:
        new_org = _org_or_422(changes.pop("org"))
        require_role(api_user(), new_org.id, Role.EDITOR)
    operations.update_event(event, changes, org=new_org)
    db.session.commit()
    return present_event(event)


@endpoint(bp, "/events/<int:event_id>/publish", "POST", summary="Publish a draft", tag="events", response=EventOut, errors=(409,))
def publish_event(event_id: int) -> EventOut:
    """The event appears in lists and calendars, and registration opens."""
    event = get_visible_event(event_id, api_user())
    require_role(api_user(), event.org_id, Role.EDITOR)
    operations.publish_event(event)
    db.session.commit()
    return present_event(event)


@endpoint(bp, "/events/<int:event_id>/cancel", "POST", summary="Cancel an event", tag="events", body=CancelBody, response=EventOut, errors=(409,))
def cancel_event(event_id: int, body: CancelBody) -> EventOut:
    """The reason is shown to participants and subscribers."""
    event = get_visible_event(event_id, api_user())
    require_role(api_user(), event.org_id, Role.EDITOR)
    operations.cancel_event(event, body.reason)
    db.session.commit()
    return present_event(event)


@endpoint(
    bp, "/events/<int:event_id>/occurrences/cancel", "POST", summary="Cancel one occurrence of a series", tag="events",
    body=OccurrenceCancelBody, response=EventOut, errors=(409,),
)
def cancel_occurrence(event_id: int, body: OccurrenceCancelBody) -> EventOut:
    """The occurrence leaves the calendars (EXDATE); the rest of the series goes ahead."""
    event = get_visible_event(event_id, api_user())
    require_role(api_user(), event.org_id, Role.EDITOR)
    operations.cancel_occurrence(event, body.starts_at)
    db.session.commit()
    return present_event(event)


@endpoint(bp, "/events/<int:event_id>", "DELETE", summary="Delete an event", tag="events")
def delete_event(event_id: int) -> None:
    """Editors delete drafts; a published, cancelled or completed event needs a manager (prefer cancelling)."""
    event = get_visible_event(event_id, api_user())
    needed = Role.EDITOR if event.status == Status.DRAFT else Role.MANAGER
    require_role(api_user(), event.org_id, needed)
    operations.delete_event(event)
    db.session.commit()


@endpoint(bp, "/events/<int:event_id>/outcome", "PUT", summary="Record the outcome", tag="events", body=OutcomeBody, response=EventOut, errors=(409,))
def put_outcome(event_id: int, body: OutcomeBody) -> EventOut:
    """Attendance and achievements after the event; a finished event becomes ``completed``."""
    event = get_visible_event(event_id, api_user())
    user = require_role(api_user(), event.org_id, Role.EDITOR)
    operations.record_outcome(event, body.model_dump(), user=user)
    db.session.commit()
    return present_event(event)
