"""Public pages: an event's page (the URL calendar entries point to), with its registration form."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template
from flask_wtf import FlaskForm

from scheduler.api.errors import NotFound
from scheduler.events.kinds import KINDS, Kind
from scheduler.events.models import Event, Status
from scheduler.events.presenters import present_event
from scheduler.events.queries import get_visible_event
from scheduler.feeds.links import subscribe_links
from scheduler.i18n import format_local_datetime
from scheduler.pages.event_form import shown_details
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.privacy.verification import required_for_registration
from scheduler.registrations.operations import registration_closes_at
from scheduler.util.time import now
from scheduler.util.urls import absolute_url

bp = Blueprint("pages", __name__)


class RegistrationForm(FlaskForm):
    """Only the CSRF token: the fields are read and checked as the API checks them
    (see :func:`scheduler.pages.public.register`)."""


def public_event(event_id: int) -> Event:
    """The event (not a draft), or 404."""
    try:
        return get_visible_event(event_id, None)
    except NotFound:
        abort(404)


def event_context(event: Event, **form: Any) -> dict[str, Any]:
    """What ``event.html`` shows: the event, its times, calendar links and the registration form
    (``form`` overrides: ``values``, ``errors``, ``problem``, ``sent``)."""
    tz = ZoneInfo(event.timezone)
    return {
        "event": present_event(event),
        "kind": KINDS[Kind(event.kind)],
        "details": shown_details(event),
        "starts": format_local_datetime(event.starts_at, tz),
        "ends": format_local_datetime(event.ends_at, tz),
        "starts_iso": event.starts_at.astimezone(tz).isoformat(),
        "ends_iso": event.ends_at.astimezone(tz).isoformat(),
        "ics": subscribe_links(absolute_url("feeds.single_event", event_id=event.id)),
        "registration_open": event.status == Status.PUBLISHED and now() < registration_closes_at(event),
        "form": RegistrationForm(),
        "values": form.get("values") or {"channels": []},  # no reminder channel chosen for anyone
        "errors": form.get("errors") or {},
        "problem": form.get("problem"),
        #: "A code was texted to ..." after the form's "Send code" button.
        "sent": form.get("sent"),
        "verify_phone": required_for_registration(),
        "notice_version": NOTICE_VERSION,
    }


@bp.get("/events/<int:event_id>")
def event_page(event_id: int) -> str:
    """An event's page: time, place, organizer, seats, how to add it to a calendar, and the registration form."""
    return render_template("event.html", **event_context(public_event(event_id)))
