"""A participant's access to their data and its erasure (flush, never commit).

From a registration's private link a participant sees and erases that registration only; after
proving their number (a code texted to it) they see and erase every registration of the number,
with the number's text choices and the texts sent to it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from scheduler.audit.operations import record
from scheduler.channels.sms.models import SmsChoice
from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.registrations import operations
from scheduler.registrations.models import Registration
from scheduler.reminders.models import Delivery
from scheduler.util.time import now


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def registration_data(registration: Registration) -> dict[str, Any]:
    """Everything kept about one registration, as its participant downloads it."""
    event = registration.event
    texts = db.session.scalars(
        select(Delivery).where(Delivery.registration_id == registration.id).order_by(Delivery.created_at)
    )
    return {
        "registration": {
            "id": registration.id, "name": registration.name, "phone": registration.phone,
            "status": registration.status, "channels": list(registration.channels or []),
            "created_at": _iso(registration.created_at), "seated_at": _iso(registration.seated_at),
            "promoted_at": _iso(registration.promoted_at), "cancelled_at": _iso(registration.cancelled_at),
            "checked_in_at": _iso(registration.checked_in_at), "consent_version": registration.consent_version,
            "consented_at": _iso(registration.consented_at), "phone_verified_at": _iso(registration.phone_verified_at),
        },
        "event": {"id": event.id, "title": event.title, "starts_at": _iso(event.starts_at), "organizer": event.org.name_zh},
        "messages": [
            {"type": d.type, "channel": d.channel, "status": d.status, "created_at": _iso(d.created_at), "sent_at": _iso(d.sent_at)}
            for d in texts
        ],
    }


def person_registrations(phone_hash: str) -> list[Registration]:
    """Every registration of a number that still holds personal data, newest first."""
    return list(db.session.scalars(
        select(Registration).where(Registration.phone_hash == phone_hash, Registration.anonymized_at.is_(None))
        .order_by(Registration.created_at.desc(), Registration.id.desc())
    ))


def person_data(phone_hash: str) -> dict[str, Any]:
    """Everything kept about a proved number: its registrations, its text choices, its calendar link."""
    choices = db.session.scalars(select(SmsChoice).where(SmsChoice.phone_hash == phone_hash).order_by(SmsChoice.created_at))
    calendar = db.session.scalar(select(PersonalCalendar).where(PersonalCalendar.phone_hash == phone_hash))
    return {
        "exported_at": _iso(now()),
        "registrations": [registration_data(r) for r in person_registrations(phone_hash)],
        "text_choices": [{"opted_out": c.opted_out, "source": c.source, "at": _iso(c.created_at)} for c in choices],
        "calendar_link": None if calendar is None else {"issued_at": _iso(calendar.issued_at), "revoked_at": _iso(calendar.revoked_at)},
    }


def erase_registration(registration: Registration) -> int:
    """Erase one registration at its participant's request (its seat goes to the waitlist);
    recorded in the audit log. Returns how many waitlisted people got a seat."""
    event, registration_id = registration.event, registration.id
    promoted = operations.erase(registration)
    record("registration.erase", f"registration:{registration_id}", org_id=event.org_id, actor="participant",
           detail={"event_id": event.id, "promoted": len(promoted), "by": "participant"})
    return len(promoted)


def erase_person(phone_hash: str) -> tuple[int, int]:
    """Erase every registration of a proved number and its calendar link; the number's text
    choices stay (an opt-out must outlive the data). Returns (erased, promoted)."""
    erased = promoted = 0
    for registration in person_registrations(phone_hash):
        promoted += erase_registration(registration)
        erased += 1
    calendar = db.session.scalar(select(PersonalCalendar).where(PersonalCalendar.phone_hash == phone_hash))
    if calendar is not None:
        db.session.delete(calendar)
        db.session.flush()
    return erased, promoted
