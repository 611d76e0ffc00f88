"""Erasure requests: a manager erases a person's registrations, found by phone number.

Routes (on the ``pages`` blueprint, login required, managers and administrators only: anyone else
gets a 403 and no menu entry; thin: :mod:`scheduler.privacy.erasure` does the work):

* ``GET /organizer/erasure``: step 1, the number and an optional note (the request's reference,
  e.g. 申请编号, kept in the audit log).
* ``POST /organizer/erasure`` (``phone``, ``note``): step 2, the registrations with the number in
  the organizations the user manages (event, organization, status, when registered; the number
  masked), and a form to confirm. That form carries a signed ticket (the number's keyed hash, the
  masked number, the note, the user; valid :data:`TICKET_SECONDS`), never the number itself. A
  number that is not one is refused next to the field (422); no match says so.
* ``POST /organizer/erasure`` (``ticket``, ``confirm``): step 3, erases what matches the number now
  and answers ``303`` back to step 1 with a message: how many registrations were erased, and how
  many people on a waitlist got a seat. An expired or forged ticket changes nothing (400).
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from scheduler.api.errors import Invalid
from scheduler.auth.models import User
from scheduler.extensions import db
from scheduler.i18n import format_local_datetime, pick
from scheduler.pages import NAV_CHECKS
from scheduler.pages.organizer_registrations import STATUS_LABELS
from scheduler.pages.views import bp
from scheduler.privacy.erasure import MAX_NOTE, erase_for_request, may_erase, phone_hash_of, registrations_by_hash
from scheduler.registrations.models import Registration
from scheduler.util.time import now

#: How long the confirmation form of step 2 stays valid.
TICKET_SECONDS = 15 * 60

NAV_CHECKS["pages.organizer_erasure"] = may_erase


def _manager() -> User:
    """The signed-in user, if they may erase (else 403)."""
    user: User = current_user._get_current_object()  # type: ignore[attr-defined]
    if not may_erase(user):
        abort(403)
    return user


class _ClockSigner(TimestampSigner):
    """Tickets dated by the application's clock (:func:`scheduler.util.time.now`)."""

    def get_timestamp(self) -> int:
        """Now, in seconds since the epoch."""
        return int(now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="organizer-erasure", signer=_ClockSigner)


def _when(value: dt.datetime) -> dict[str, str]:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return {"text": format_local_datetime(value, tz), "iso": value.astimezone(tz).isoformat()}


def match_rows(registrations: list[Registration]) -> list[dict[str, Any]]:
    """What the table of step 2 shows of each registration (no name, no number)."""
    return [{
        "event_id": r.event_id, "event_title": r.event.title, "org": pick(r.event.org.name_zh, r.event.org.name_en),
        "status": str(STATUS_LABELS.get(r.status, r.status)), "registered": _when(r.created_at),
    } for r in registrations]


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    values = {"phone": "", "note": "", "error": None, "note_error": None, "problem": None, "matches": None, "masked": None,
              "ticket": None, "max_note": MAX_NOTE, **context}
    return render_template("organizer_erasure.html", **values), status


@bp.get("/organizer/erasure")
@login_required
def organizer_erasure() -> tuple[str, int]:
    """Step 1: the form asking for the number."""
    _manager()
    return _page()


@bp.post("/organizer/erasure")
@login_required
def organizer_erasure_post() -> tuple[str, int] | Response:
    """Step 2 (what matches, to confirm) or, with ``confirm``, step 3 (erase)."""
    user = _manager()
    if "confirm" in request.form:
        return _confirm(user)
    phone, note = request.form.get("phone", "").strip()[:32], request.form.get("note", "").strip()
    if len(note) > MAX_NOTE:
        too_long = gettext("Give at most %(count)s characters.", count=MAX_NOTE)
        return _page(422, phone=phone, note=note[:MAX_NOTE], note_error=too_long)
    try:
        phone_hash, masked = phone_hash_of(phone)
    except Invalid:
        return _page(422, phone=phone, note=note, error=gettext("Give a mobile phone number, such as 13800138000."))
    registrations = registrations_by_hash(user, phone_hash)
    ticket = _serializer().dumps({"user": user.id, "hash": phone_hash, "masked": masked, "note": note})
    return _page(matches=match_rows(registrations), masked=masked, note=note, ticket=ticket)


def _confirm(user: User) -> tuple[str, int] | Response:
    try:
        ticket = _serializer().loads(request.form.get("ticket", ""), max_age=TICKET_SECONDS)
    except BadData:
        ticket = None
    if not isinstance(ticket, dict) or ticket.get("user") != user.id:
        return _page(400, problem=gettext("This confirmation is too old or not yours: look the number up again."))
    registrations = registrations_by_hash(user, str(ticket["hash"]))
    erased = erase_for_request(user, registrations, masked=str(ticket["masked"]), note=str(ticket.get("note", "")))
    db.session.commit()
    flash(gettext("Registrations with %(phone)s erased: %(erased)s. People on a waitlist who got a seat: %(promoted)s.",
                  phone=ticket["masked"], erased=erased.erased, promoted=erased.promoted))
    return redirect(url_for("pages.organizer_erasure"), code=303)
