"""A registration's own page (``/m/<code>``, the short link in every text and on the confirmation
page): texts for this event stopped or restarted, its calendar link, its data to download,
erasure. The link opens this registration only: changing the texts of every registration of the
number needs the number proved (a texted code, on ``/me``) or a ``TD`` reply. A cancelled
registration's page keeps only the download and the erasure; an erased one's is gone."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from scheduler.audit.operations import record
from scheduler.channels.health import disable_endpoint
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.sms import choices
from scheduler.channels.sms.links import endpoint_id_for, registration_id_for
from scheduler.extensions import db
from scheduler.feeds import personal
from scheduler.feeds.api import registration_links
from scheduler.pages.person import json_download, proved_phone_hash
from scheduler.pages.views import bp
from scheduler.privacy import access
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.phone import mask_phone
from scheduler.util.time import now

#: What the page's buttons do; the ``*_all`` ones only for a browser that proved the number.
ACTIONS = ("stop_event", "resume_event", "stop_all", "resume_all", "calendar_revoke", "calendar_new")


class ChoiceForm(FlaskForm):
    """Only the CSRF token: the button pressed names the action."""


def _registration(code: str) -> Registration:
    registration_id = registration_id_for(code)
    registration = db.session.get(Registration, registration_id) if registration_id else None
    if registration is None or registration.anonymized_at is not None:
        abort(404)
    return registration


def _owns_number(registration: Registration) -> bool:
    """Whether this browser proved the registration's number (a texted code, for a while)."""
    proved = proved_phone_hash()
    return proved is not None and proved == registration.phone_hash


@bp.route("/m/<code>", methods=["GET", "POST"])
def manage_reminders(code: str) -> str | Response:
    """Show the registration's page; a POST records a choice (with when and how)."""
    registration = _registration(code)
    active = registration.status != RegistrationStatus.CANCELLED
    owner = _owns_number(registration)
    form = ChoiceForm()
    if request.method == "POST":
        action = request.form.get("action", "")
        if not form.validate_on_submit() or action not in ACTIONS or not active:
            abort(400)
        if action.endswith("_all") and not owner:
            abort(403)
        if action == "stop_event":
            choices.stop_for_event(registration)
        elif action == "resume_event":
            choices.resume_for_event(registration)
        elif action == "calendar_revoke":
            personal.revoke_for_registration(registration)
        elif action == "calendar_new":
            personal.issue_for_registration(registration)
        else:
            choices.record_choice(registration.phone or "", action == "stop_all", "link", detail=f"/m/{code[:8]}")
        db.session.commit()
        flash(gettext("Saved"))
        return redirect(url_for("pages.manage_reminders", code=code))
    stopped_all = owner and bool(choices.opted_out_hashes({registration.phone_hash or ""}))
    return render_template(
        "manage_reminders.html", registration=registration, event=registration.event, form=form, code=code,
        phone=mask_phone(registration.phone or ""), texts_for_event="sms" in registration.channels, stopped_all=stopped_all,
        owner=owner, active=active, calendar=registration_links(registration) if active else None,
    )


@bp.get("/m/<code>/data.json")
def registration_data(code: str) -> Response:
    """Everything kept about this registration, as a JSON download."""
    registration = _registration(code)
    return json_download(access.registration_data(registration), f"registration-{registration.id}.json")


@bp.post("/m/<code>/erase")
def erase_registration(code: str) -> Response:
    """Erase this registration (after ticking the confirmation): its seat goes to the waitlist."""
    registration = _registration(code)
    if not ChoiceForm().validate_on_submit():
        abort(400)
    if request.form.get("confirm") != "yes":
        flash(gettext("Tick the box to confirm the erasure."))
        return redirect(url_for("pages.manage_reminders", code=code))
    event_id = registration.event_id
    access.erase_registration(registration)
    db.session.commit()
    flash(gettext("Your registration and your data are erased."))
    return redirect(url_for("pages.event_page", event_id=event_id), code=303)


@bp.route("/u/<code>", methods=["GET", "POST"])
def unsubscribe_endpoint(code: str) -> str | Response:
    """The link in a robot's messages: confirm, and the robot gets no more (its owners are told)."""
    endpoint_id = endpoint_id_for(code)
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if endpoint_id else None
    if endpoint is None:
        abort(404)
    form = ChoiceForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        if endpoint.enabled:
            disable_endpoint(endpoint, "Unsubscribed by the link in its messages.", now())
            record("endpoint.unsubscribe", f"endpoint:{endpoint.id}", org_id=endpoint.org_id, actor="group member")
            db.session.commit()
        return redirect(url_for("pages.unsubscribe_endpoint", code=code))
    return render_template("unsubscribe_endpoint.html", endpoint=endpoint, form=form)
