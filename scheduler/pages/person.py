"""A participant's own pages: the privacy notice, and "My registrations" (``/me``) after proving
their number with a texted code: every registration of the number, all texts stopped or
restarted, the calendar of everything, the data to download, and erasure.

The proof lasts :data:`~scheduler.privacy.verification.SESSION_TTL` in this browser: its token sits
in the signed session cookie (``session["person"]``), and leaving the page forgets it.
"""
from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from scheduler.api.errors import Invalid, NotFound, TooManyRequests
from scheduler.channels.sms import choices
from scheduler.channels.sms.links import manage_url
from scheduler.extensions import db, limiter
from scheduler.feeds import personal
from scheduler.feeds.api import person_links
from scheduler.pages.views import bp
from scheduler.privacy import access, verification
from scheduler.privacy.participant_api import verification_limit
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import RegistrationStatus
from scheduler.util.phone import mask_phone


class PersonForm(FlaskForm):
    """Only the CSRF token: the buttons and fields are read by the routes."""


def remember_person(token: str) -> None:
    """Keep a proof of the number in this browser's session (after a right code)."""
    session["person"] = token


def proved_phone_hash() -> str | None:
    """The keyed hash of the number this browser proved (while the proof lasts), or ``None``."""
    return verification.phone_hash_for_session(session.get("person"))


@bp.get("/privacy")
def privacy() -> str:
    """The privacy notice: what is collected and why, who sees it, how long it is kept, your rights."""
    from flask import current_app

    return render_template("privacy.html", version=NOTICE_VERSION,
                           retention_days=current_app.config.get("REGISTRATION_RETENTION_DAYS", 365))


def _prove_form(status: int = 200, **shown: object) -> tuple[str, int]:
    values = {"phone": request.form.get("phone", ""), "verification_id": shown.pop("verification_id", request.form.get("verification_id", ""))}
    return render_template("person_prove.html", form=PersonForm(), values=values, **shown), status


@bp.get("/me")
def person_page() -> str | tuple[str, int]:
    """My registrations (after proving the number), or the form to prove it."""
    phone_hash = proved_phone_hash()
    if phone_hash is None:
        return _prove_form()
    registrations = access.person_registrations(phone_hash)
    return render_template(
        "person.html", form=PersonForm(), registrations=registrations, manage_url=manage_url,
        active=(RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value),
        stopped_all=bool(choices.opted_out_hashes({phone_hash})), calendar=person_links(phone_hash),
    )


@bp.post("/me/code")
@limiter.shared_limit(verification_limit, scope="verification")
def person_code() -> tuple[str, int]:
    """Text a code to the number typed."""
    if not PersonForm().validate_on_submit():
        abort(400)
    try:
        phone = verification.parse_phone(request.form.get("phone", ""))
        row, code = verification.request_code(phone)
    except Invalid:
        db.session.rollback()
        return _prove_form(422, error=gettext("Give a mobile number such as 13800138000."))
    except TooManyRequests:
        db.session.rollback()
        return _prove_form(429, problem=gettext("Too many codes asked for: please wait a few minutes and try again."))
    db.session.commit()
    if not verification.send_code(row, phone, code):
        return _prove_form(503, problem=gettext("The code could not be texted now: please try again in a minute."))
    sent = gettext("A code was texted to %(phone)s. It is valid for 10 minutes.", phone=mask_phone(phone))
    return _prove_form(200, sent=sent, verification_id=row.id)


@bp.post("/me/verify")
def person_verify() -> tuple[str, int] | Response:
    """Check the code; a right one opens "My registrations" in this browser."""
    if not PersonForm().validate_on_submit():
        abort(400)
    try:
        phone = verification.parse_phone(request.form.get("phone", ""))
        proof = verification.check_code(request.form.get("verification_id", ""), phone, request.form.get("code", ""))
    except Invalid as exc:
        db.session.commit()  # a wrong try counts
        if "phone" in exc.fields:
            return _prove_form(422, error=gettext("Give a mobile number such as 13800138000."))
        message = gettext("Wrong code: check the text and try again.") if exc.code == "wrong_code" \
            else gettext("This code has expired or had too many wrong tries: ask for a new one.")
        return _prove_form(422, code_error=message)
    except NotFound:
        db.session.rollback()
        return _prove_form(422, code_error=gettext("Ask for a code first (it is texted to your number), then give it here."))
    remember_person(verification.open_session(proof))
    db.session.commit()
    return redirect(url_for("pages.person_page"), code=303)


def _proved() -> str:
    if not PersonForm().validate_on_submit():
        abort(400)
    phone_hash = proved_phone_hash()
    if phone_hash is None:
        flash(gettext("Prove your number again: the code's proof lasts 30 minutes."))
        abort(redirect(url_for("pages.person_page"), code=303))
    return phone_hash


@bp.post("/me")
def person_action() -> Response:
    """Stop or restart all texts to the number; revoke or renew the calendar link; leave."""
    phone_hash = _proved()
    action = request.form.get("action", "")
    if action in ("stop_all", "resume_all"):
        choices.record_hashed_choice(phone_hash, action == "stop_all", "link", detail="/me")
    elif action == "calendar_revoke":
        personal.revoke_person_token(phone_hash)
    elif action == "calendar_new":
        personal.reissue_person_token(phone_hash)
    elif action == "leave":
        verification.end_session(session.pop("person", None))
        db.session.commit()
        return redirect(url_for("pages.event_list"), code=303)
    else:
        abort(400)
    db.session.commit()
    flash(gettext("Saved"))
    return redirect(url_for("pages.person_page"), code=303)


def json_download(data: object, filename: str) -> Response:
    """``data`` as a JSON file to save (never kept by a cache: it holds personal data)."""
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(body, content_type="application/json; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.get("/me/data.json")
def person_data() -> Response:
    """Everything kept about the number, as a JSON download."""
    phone_hash = proved_phone_hash()
    if phone_hash is None:
        abort(404)
    return json_download(access.person_data(phone_hash), "my-registrations.json")


@bp.post("/me/erase")
def person_erase() -> Response:
    """Erase every registration of the number (after ticking the confirmation)."""
    phone_hash = _proved()
    if request.form.get("confirm") != "yes":
        flash(gettext("Tick the box to confirm that everything is to be erased."))
        return redirect(url_for("pages.person_page"), code=303)
    erased, _ = access.erase_person(phone_hash)
    db.session.commit()
    flash(gettext("Erased: %(count)s registrations. Freed seats went to the waitlist.", count=erased))
    return redirect(url_for("pages.person_page"), code=303)
