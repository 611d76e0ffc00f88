"""Erasure on request: ``POST /api/v1/erasures`` (managers and administrators)."""
from __future__ import annotations

from scheduler.api import api_user, bp, endpoint
from scheduler.auth.permissions import require_user
from scheduler.extensions import db
from scheduler.privacy.erasure import erase_for_request, phone_hash_of, registrations_by_hash, require_eraser
from scheduler.privacy.erasure_schemas import ErasureMatch, ErasureOut, ErasureRequest


@endpoint(bp, "/erasures", "POST", summary="Erase a person's registrations by phone number", tag="privacy",
          body=ErasureRequest, response=ErasureOut, errors=(403,))
def create_erasure(body: ErasureRequest) -> ErasureOut:
    """Managers (of the event's organization or one above it) and administrators. Without
    ``confirm`` it only lists the registrations with the number in the organizations you manage;
    with ``confirm: true`` it erases them: each is cancelled (a freed seat goes to the waitlist)
    and its name and number are removed; counts and check-ins stay. Recorded in the audit log
    with the number masked."""
    user = require_eraser(require_user(api_user()))
    phone_hash, masked = phone_hash_of(body.phone)
    registrations = registrations_by_hash(user, phone_hash)
    matches = [
        ErasureMatch(registration_id=r.id, event_id=r.event_id, event_title=r.event.title, org=r.event.org.slug,
                     status=r.status, created_at=r.created_at)
        for r in registrations
    ]
    erased = promoted = 0
    if body.confirm:
        done = erase_for_request(user, registrations, masked=masked, note=body.note)
        erased, promoted = done.erased, done.promoted
        db.session.commit()
    return ErasureOut(phone=masked, matches=matches, erased=erased, promoted=promoted)
