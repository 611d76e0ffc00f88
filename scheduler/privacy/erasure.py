"""Organizers erase a person's registrations on request, by phone number (flush, never commit).

A participant may ask an organizer (by telephone, letter, …) to delete their data. Managers find
the registrations with that number among the events of the organizations they manage (and those
below them; administrators: everywhere), see them, confirm, and each is erased as
:func:`scheduler.registrations.operations.erase` does it: cancelled (a seat freed goes to the
waitlist, as on any cancellation), then anonymized. Registrations of other organizations with the
same number are neither shown nor touched. Numbers are matched by their keyed hash; the audit log
gets the number masked only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from scheduler.api.errors import Forbidden, Invalid
from scheduler.audit.operations import record
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.queries import subtree_ids
from scheduler.registrations.models import Registration
from scheduler.registrations.operations import erase
from scheduler.util.phone import InvalidPhone, mask_phone, normalize_phone, phone_key

#: The longest request note kept (a reference such as 申请编号 2024-017).
MAX_NOTE = 200


@dataclass(frozen=True)
class Erased:
    """What one erasure request did."""

    erased: int
    promoted: int
    event_ids: list[int] = field(default_factory=list)


def managed_org_ids(user: User) -> set[int] | None:
    """The organizations whose registrations ``user`` may erase: those they manage and everything
    below them (roles are inherited down the tree); ``None`` means every one (administrators)."""
    if user.is_admin:
        return None
    return subtree_ids({m.org_id for m in user.memberships if m.role == Role.MANAGER.value})


def may_erase(user: User | None) -> bool:
    """Whether ``user`` manages some organization (or is an administrator)."""
    return user is not None and (user.is_admin or any(m.role == Role.MANAGER.value for m in user.memberships))


def require_eraser(user: User) -> User:
    """``user``, when :func:`may_erase`; 403 otherwise."""
    if not may_erase(user):
        raise Forbidden("Erasing participants' data needs the manager role.")
    return user


def phone_hash_of(phone: str) -> tuple[str, str]:
    """``(keyed hash, masked number)`` of a typed number; 422 naming ``phone`` when it is not one."""
    try:
        e164 = normalize_phone(phone.strip())
    except InvalidPhone as exc:
        raise Invalid(fields={"phone": f"{exc.args[0].capitalize()}: give a mobile number such as 13800138000."}) from None
    return phone_key(e164), mask_phone(e164)


def registrations_by_hash(user: User, phone_hash: str) -> list[Registration]:
    """The registrations whose number has this keyed hash, in the organizations ``user`` manages,
    newest first, with their events and organizations loaded. 403 unless :func:`may_erase`."""
    require_eraser(user)
    query = (
        select(Registration).join(Event, Event.id == Registration.event_id)
        .where(Registration.phone_hash == phone_hash)
        .options(joinedload(Registration.event).joinedload(Event.org))
        .order_by(Registration.created_at.desc(), Registration.id.desc())
    )
    scope = managed_org_ids(user)
    if scope is not None:
        query = query.where(Event.org_id.in_(scope))
    return list(db.session.scalars(query))


def find_for_erasure(user: User, phone: str) -> list[Registration]:
    """The registrations with the number ``phone`` (as typed: read as mainland Chinese without a
    country code) of events in the organizations ``user`` manages. 422 for a number that is not
    one, 403 for someone who manages nothing."""
    require_eraser(user)
    phone_hash, _ = phone_hash_of(phone)
    return registrations_by_hash(user, phone_hash)


def erase_for_request(user: User, registrations: list[Registration], *, masked: str | None = None, note: str = "") -> Erased:
    """Erase ``registrations`` (found by :func:`find_for_erasure`) and record it in the audit log:
    ``registrations.erase`` on ``phone:<masked number>``, with the count, the events, how many
    waitlisted people got a seat, and the request's ``note``. Each must be of one number and of
    an organization ``user`` manages (403 otherwise, and nothing is erased)."""
    hashes = {r.phone_hash for r in registrations}
    if len(hashes) > 1 or None in hashes:
        raise Invalid("The registrations are not all of one number.", code="mixed_numbers")
    for registration in registrations:
        if not can(user, registration.event.org_id, Role.MANAGER):
            raise Forbidden("Erasing participants' data needs the manager role in the event's organization.")
    if masked is None:
        phone = registrations[0].phone if registrations else None
        masked = mask_phone(phone) if phone else ""
    orgs = {r.event.org_id for r in registrations}
    event_ids = sorted({r.event_id for r in registrations})
    promoted = sum(len(erase(registration)) for registration in registrations)
    detail: dict[str, object] = {"count": len(registrations), "event_ids": event_ids, "promoted": promoted}
    if note.strip():
        detail["note"] = note.strip()[:MAX_NOTE]
    record("registrations.erase", f"phone:{masked}", org_id=orgs.pop() if len(orgs) == 1 else None, detail=detail, user=user)
    return Erased(len(registrations), promoted, event_ids)
