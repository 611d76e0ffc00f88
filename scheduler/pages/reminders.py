"""A participant's reminder page (``/m/<code>``, the short link in every text): stop texts
for this event, stop all texts to the number, or start them again."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from scheduler.channels.sms import choices
from scheduler.channels.health import disable_endpoint
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.sms.links import endpoint_id_for, registration_id_for
from scheduler.extensions import db
from scheduler.pages.views import bp
from scheduler.registrations.models import Registration
from scheduler.util.phone import mask_phone
from scheduler.util.time import now

ACTIONS = ("stop_event", "resume_event", "stop_all", "resume_all")


class ChoiceForm(FlaskForm):
    """Only the CSRF token: the button pressed names the action."""


def _registration(code: str) -> Registration:
    registration_id = registration_id_for(code)
    registration = db.session.get(Registration, registration_id) if registration_id else None
    if registration is None:
        abort(404)
    return registration


@bp.route("/m/<code>", methods=["GET", "POST"])
def manage_reminders(code: str) -> str | Response:
    """Show the registration's reminder choices; a POST records one (with when and how)."""
    registration = _registration(code)
    form = ChoiceForm()
    if request.method == "POST":
        action = request.form.get("action", "")
        if not form.validate_on_submit() or action not in ACTIONS:
            abort(400)
        if action == "stop_event":
            choices.stop_for_event(registration)
        elif action == "resume_event":
            choices.resume_for_event(registration)
        else:
            choices.record_choice(registration.phone, action == "stop_all", "link", detail=f"/m/{code}")
        db.session.commit()
        flash(gettext("Saved"))
        return redirect(url_for("pages.manage_reminders", code=code))
    stopped_all = registration.phone in choices.opted_out({registration.phone})
    return render_template(
        "manage_reminders.html", registration=registration, event=registration.event, form=form,
        phone=mask_phone(registration.phone), texts_for_event="sms" in registration.channels, stopped_all=stopped_all,
    )


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
            db.session.commit()
        return redirect(url_for("pages.unsubscribe_endpoint", code=code))
    return render_template("unsubscribe_endpoint.html", endpoint=endpoint, form=form)
