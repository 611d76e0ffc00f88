"""Registration endpoints: public registration and cancellation, the organizer's list, check-in at the door."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import NotFound
from scheduler.audit.operations import record
from scheduler.auth.models import Role
from scheduler.auth.permissions import can, require_role
from scheduler.events.queries import MAX_ID, get_visible_event
from scheduler.extensions import db, limiter
from scheduler.channels.sms.links import manage_url
from scheduler.feeds.api import registration_links
from scheduler.privacy.verification import prove_for_registration
from scheduler.registrations import operations
from scheduler.registrations.models import Registration
from scheduler.registrations.schemas import (
    RegistrationCancelled,
    RegistrationCreate,
    RegistrationCreated,
    RegistrationListQuery,
    RegistrationOut,
    RegistrationPage,
)
from scheduler.util.phone import mask_phone


#: The scope the API and the event page's form share: one budget per client address, whichever route
#: a registration takes (``RATELIMIT_REGISTRATIONS``, e.g. 20 a minute in all, not 20 by each route).
REGISTRATION_SCOPE = "registrations"


def registration_limit() -> str:
    """Registrations per client address (``RATELIMIT_REGISTRATIONS``), shared by the API and the pages."""
    return str(current_app.config["RATELIMIT_REGISTRATIONS"])


@endpoint(
    bp, "/events/<int:event_id>/registrations", "POST", summary="Register for an event", tag="registrations",
    body=RegistrationCreate, response=RegistrationCreated, status=201, auth="none", errors=(404, 409, 422, 429),
)
@limiter.shared_limit(registration_limit, scope=REGISTRATION_SCOPE)
def create_registration(event_id: int, body: RegistrationCreate) -> RegistrationCreated:
    """Public. Takes a seat, or a place on the waitlist when the event is full; keep the token.
    ``consent`` (the privacy notice's version, ``GET /api/v1/privacy``) is required; with
    ``REGISTRATION_VERIFY_PHONE=sms`` so are ``verification_id`` and ``code`` (``POST /api/v1/verifications``)."""
    event = get_visible_event(event_id, None)
    proof = prove_for_registration(body.phone, body.verification_id, body.code)
    registration, token = operations.register(
        event, name=body.name, phone=body.phone, channels=[c.value for c in body.channels or []],
        consent_version=body.consent, verified=proof is not None,
    )
    position = operations.waitlist_position(registration)
    links = registration_links(registration)
    db.session.commit()
    return RegistrationCreated(
        id=registration.id, event_id=event.id, status=registration.status, token=token, waitlist_position=position,
        calendar=links, manage_url=manage_url(registration.id), phone_verified=proof is not None,
    )


@endpoint(bp, "/registrations/<token>", "DELETE", summary="Cancel a registration", tag="registrations", response=RegistrationCancelled, auth="none", errors=(409,))
def cancel_registration(token: str) -> RegistrationCancelled:
    """By the private token; a freed seat goes to the first person on the waitlist."""
    registration = operations.get_by_token(token)
    if registration is None:
        raise NotFound("No such registration.")
    promoted = operations.cancel_registration(registration)
    db.session.commit()
    return RegistrationCancelled(id=registration.id, status=registration.status, promoted=len(promoted))


@endpoint(
    bp, "/events/<int:event_id>/registrations", summary="List an event's registrations", tag="registrations",
    query=RegistrationListQuery, response=RegistrationPage,
)
def list_registrations(event_id: int, query: RegistrationListQuery) -> RegistrationPage:
    """Members of the organization; viewers see phone numbers masked."""
    event = get_visible_event(event_id, api_user())
    user = require_role(api_user(), event.org_id, Role.VIEWER)
    stmt = select(Registration).where(Registration.event_id == event.id)
    if query.status:
        stmt = stmt.where(Registration.status.in_([s.value for s in query.status]))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(
        stmt.order_by(Registration.created_at, Registration.id).offset((query.page - 1) * query.per_page).limit(query.per_page)
    )
    show_phone = can(user, event.org_id, Role.EDITOR)
    items = []
    for row in rows:
        item = RegistrationOut.model_validate(row)
        if not show_phone and row.phone:
            item.phone = mask_phone(row.phone)
        items.append(item)
    if show_phone:  # full numbers were read (or looked for): who, when, from where
        record("registrations.read", f"event:{event.id}", org_id=event.org_id, detail={"shown": len(items), "api": True})
        db.session.commit()
    return RegistrationPage(items=items, page=query.page, per_page=query.per_page, total=total)


def _editable_registration(registration_id: int) -> Registration:
    """The registration, for an editor of its event's organization (404 when unknown or its event is
    a draft the user may not see, 403 for anyone else)."""
    registration = db.session.get(Registration, registration_id) if 0 < registration_id <= MAX_ID else None
    if registration is None:
        raise NotFound("No such registration.")
    event = get_visible_event(registration.event_id, api_user())
    require_role(api_user(), event.org_id, Role.EDITOR)
    return registration


@endpoint(
    bp, "/registrations/<int:registration_id>/check-in", "POST", summary="Check a participant in at the door",
    tag="registrations", response=RegistrationOut, errors=(409,),
)
def check_in_registration(registration_id: int) -> RegistrationOut:
    """Editors of the event's organization. Only seated registrations, from 24 hours before the
    start until the end of the event's last day (in its time zone); 409 otherwise, or when checked in already."""
    registration = operations.check_in(_editable_registration(registration_id))
    db.session.commit()
    return RegistrationOut.model_validate(registration)


@endpoint(
    bp, "/registrations/<int:registration_id>/check-in", "DELETE", summary="Undo a check-in",
    tag="registrations", response=RegistrationOut, errors=(409,),
)
def undo_check_in_registration(registration_id: int) -> RegistrationOut:
    """Editors of the event's organization, within the same window as the check-in; 409 when not checked in."""
    registration = operations.undo_check_in(_editable_registration(registration_id))
    db.session.commit()
    return RegistrationOut.model_validate(registration)
