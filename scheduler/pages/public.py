"""The participants' pages: upcoming events, the month calendar, registering and cancelling.

Routes (on the ``pages`` blueprint, thin: the queries and operations do the work):

* ``GET /`` and ``GET /events``: upcoming published events, filtered by kind, county,
  organization, month and words (``q``: in the title, description or venue; a plain GET form),
  20 a page.
* ``GET /events/calendar?month=YYYY-MM``: the same filters as a month calendar (each
  occurrence of a series on its days, a multi-day event on each of its days).
* ``POST /events/<id>/register``: the event page's form. The fields are checked by the API's
  schema and then by :func:`scheduler.registrations.operations.register`; what they refuse is
  shown next to the fields (422; 409 when registration is closed or the number is registered
  already). Rate-limited together with the API (``RATELIMIT_REGISTRATIONS``: one budget per client
  address, shared by both routes).
* ``GET /registrations/<id>/confirmation``: seated or waitlisted, and the private links.
* ``GET /registrations/cancel`` (a form to paste the registration code) and
  ``POST /registrations/cancel`` (the code in the body): cancel; a freed seat goes to the waitlist.

**Where the private token goes.** Registering answers ``303`` to the confirmation page, whose URL
names only the registration's id. The token travels in the signed session cookie
(``session["registered"]``, at most :data:`KEEP` registrations, each for :data:`CONFIRMATION_TTL`),
so it never appears in a URL and so never in a server's or proxy's access log or a Referer.
Without that cookie entry (another browser, or later) the confirmation page is a 404: the
participant keeps the code shown on it, and the links of the page are what the API also gives
(the personal calendar link is the feed's own address and carries its own token, as in the API).
Cancelling is a POST whose body carries the code, never a GET URL.
"""
from __future__ import annotations

import calendar as calendar_module
import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, get_day_names
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_time, get_locale, gettext, lazy_gettext
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from scheduler.api.errors import Conflict, Invalid, NotFound, from_validation_error
from scheduler.api.errors import TooManyRequests as ApiTooMany
from scheduler.channels.sms.links import manage_url
from scheduler.events.kinds import KINDS
from scheduler.events.models import Event
from scheduler.events.presenters import present_events
from scheduler.events.queries import filtered, list_events
from scheduler.events.schemas import EventListQuery
from scheduler.events.times import occurrence_starts
from scheduler.extensions import db, limiter
from scheduler.feeds.api import registration_links
from scheduler.i18n import format_local_datetime
from scheduler.orgs.counties import COUNTIES
from scheduler.orgs.models import Organization
from scheduler.pages.errors import CSRF_EXPIRED, csrf_failed, error_page
from scheduler.pages.person import remember_person
from scheduler.pages.views import RegistrationForm, bp, event_context, public_event
from scheduler.privacy import verification
from scheduler.privacy.participant_api import verification_limit
from scheduler.registrations import operations
from scheduler.registrations.api import REGISTRATION_SCOPE, registration_limit
from scheduler.registrations.models import RegistrationStatus
from scheduler.registrations.schemas import RegistrationCreate
from scheduler.util.phone import mask_phone
from scheduler.util.time import now

PER_PAGE = 20
#: How long the confirmation page can show a registration's private links, and how many it keeps.
CONFIRMATION_TTL = 3600
KEEP = 5
#: The most events one month's calendar shows.
MONTH_LIMIT = 500
FILTERS = ("kind", "county", "org", "month", "q")

#: What the operation's or schema's refusal of a field means, in the page's language.
FIELD_MESSAGES = {
    "name": lazy_gettext("Give your name (at most 100 characters)."),
    "phone": lazy_gettext("Give a mobile number such as 13800138000."),
    "channels": lazy_gettext("Choose text messages, or nothing."),
    "consent": lazy_gettext("To register, agree to the privacy notice."),
    "code": lazy_gettext("Give the 6-digit code texted to your number."),
}
MAINLAND_ONLY = lazy_gettext("Text reminders go to mainland China mobile numbers only: leave text messages unticked.")
NOTICE_CHANGED = lazy_gettext("The privacy notice has changed: read it again and agree.")
CODE_MESSAGES = {
    "code_required": lazy_gettext("Ask for a code first (it is texted to your number), then give it here."),
    "no_code": lazy_gettext("Ask for a code first (it is texted to your number), then give it here."),
    "code_expired": lazy_gettext("This code has expired or had too many wrong tries: ask for a new one."),
    "wrong_code": lazy_gettext("Wrong code: check the text and try again."),
}
CONFLICTS = {
    "registration_closed": lazy_gettext("Registration is closed for this event."),
    "already_registered": lazy_gettext("This phone number is registered for this event already: see “My registrations”."),
    "not_registered": lazy_gettext("The registration could not be made. If you registered before, use the link on "
                                   "your confirmation page or in our texts, or open “My registrations”."),
}
TOO_MANY = lazy_gettext("Too many registrations from your address: please wait a few minutes and try again.")
TOO_MANY_CODES = lazy_gettext("Too many codes asked for: please wait a few minutes and try again.")
CODE_NOT_SENT = lazy_gettext("The code could not be texted now: please try again in a minute.")


# --- filters --------------------------------------------------------------------------------------

def _filter_values() -> dict[str, str]:
    """The filters asked for (empty select options dropped)."""
    return {key: request.args.get(key, "").strip() for key in FILTERS if request.args.get(key, "").strip()}


def _filter_choices() -> dict[str, Any]:
    orgs = db.session.scalars(select(Organization).order_by(Organization.slug))
    return {
        "kinds": [(key.value, info) for key, info in KINDS.items()],
        "counties": list(COUNTIES.items()),
        "orgs": list(orgs),
    }


def _query(values: dict[str, str], **extra: Any) -> EventListQuery | None:
    """The list query of the filters, or ``None`` when one is not valid."""
    try:
        return EventListQuery.model_validate({**values, **extra})
    except ValidationError:
        return None


def _page_number() -> int | None:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 1 <= int(text) <= 100_000 else None


def _url(endpoint: str, values: dict[str, str], **changes: Any) -> str:
    args = {**values, **{k: v for k, v in changes.items() if v is not None}}
    if "lang" in request.args:
        args["lang"] = request.args["lang"]
    query = urlencode(args)
    return url_for(endpoint) + (f"?{query}" if query else "")


# --- times ----------------------------------------------------------------------------------------

def _occurrences(event: Event) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each occurrence's local start and end (cancelled occurrences left out)."""
    tz = ZoneInfo(event.timezone)
    length = event.ends_at - event.starts_at
    skipped = {dt.datetime.fromisoformat(stamp) for stamp in event.exdates or []}
    return [
        (start.astimezone(tz), (start + length).astimezone(tz))
        for start in occurrence_starts(event.starts_at, event.timezone, event.rrule) if start not in skipped
    ] or [(event.starts_at.astimezone(tz), event.ends_at.astimezone(tz))]


def _next_start(event: Event, after: dt.datetime) -> dt.datetime:
    """The start of the first occurrence still running after ``after`` (of a series: the next one)."""
    occurrences = _occurrences(event)
    return next((start for start, end in occurrences if end > after), occurrences[0][0])


# --- the list -------------------------------------------------------------------------------------

@bp.get("/")
@bp.get("/events")
def event_list() -> tuple[str, int]:
    """Upcoming published events with filters, 20 a page."""
    values = _filter_values()
    page = _page_number()
    query = _query(values, status="published", page=page or 1, per_page=PER_PAGE, **{"from": now()})
    rows: list[dict[str, Any]] = []
    total, status, problem = 0, 200, None
    if query is None or page is None:
        status, problem = 400, gettext("Some filters are not valid; showing none.")
    else:
        try:
            events, total = list_events(query, None)
        except Invalid as exc:
            if set(exc.fields) != {"to"}:  # "to": a month already over has no upcoming events
                status, problem = 400, gettext("Some filters are not valid; showing none.")
            events = []
        moment = now()
        for event, shown in zip(events, present_events(events)):
            start = _next_start(event, moment)
            rows.append({
                "event": shown, "when": format_local_datetime(start, start.tzinfo), "when_iso": start.isoformat(),
            })
    pages = max(1, -(-total // PER_PAGE))
    current = page or 1
    return render_template(
        "events.html", rows=rows, total=total, values=values, problem=problem, **_filter_choices(),
        page=current, pages=pages,
        previous_url=_url("pages.event_list", values, page=current - 1) if current > 1 else None,
        next_url=_url("pages.event_list", values, page=current + 1) if current < pages else None,
        calendar_url=_url("pages.month_calendar", values),
    ), status


# --- the month calendar ---------------------------------------------------------------------------

def _month_of(text: str | None) -> dt.date | None:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    if not text:
        today = now().astimezone(tz).date()
        return today.replace(day=1)
    if _query({"month": text}) is None:
        return None
    return dt.date(int(text[:4]), int(text[5:]), 1)


def _shift(month: dt.date, by: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + by
    return dt.date(index // 12, index % 12 + 1, 1)


@bp.get("/events/calendar")
def month_calendar() -> tuple[str, int]:
    """One month's published (and completed) events as a calendar, Monday first."""
    values = _filter_values()
    month = _month_of(values.get("month"))
    status, problem = 200, None
    if month is None:
        month = _month_of(None)
        assert month is not None
        values.pop("month", None)
        status, problem = 400, gettext("Some filters are not valid; showing none.")
    values["month"] = f"{month:%Y-%m}"
    query = _query(values, status="published,completed")
    events: list[Event] = []
    if query is None:
        status, problem = 400, gettext("Some filters are not valid; showing none.")
    elif problem is None:
        try:
            events = list(db.session.scalars(filtered(query, None).limit(MONTH_LIMIT)).unique())
        except Invalid:
            status, problem = 400, gettext("Some filters are not valid; showing none.")
    days: dict[dt.date, list[dict[str, Any]]] = {}
    last = _shift(month, 1) - dt.timedelta(days=1)
    for event in events:
        for start, end in _occurrences(event):
            day = max(start.date(), month)
            final = min((end - dt.timedelta(microseconds=1)).date(), last)
            while day <= final:
                days.setdefault(day, []).append({
                    "id": event.id, "title": event.title, "kind": KINDS[event.kind],
                    "time": format_time(start, "short", rebase=False) if day == start.date() and not event.all_day else None,
                    "sort": start,
                })
                day += dt.timedelta(days=1)
    for entries in days.values():
        entries.sort(key=lambda entry: entry["sort"])
    locale = get_locale()
    weekday_names = get_day_names("abbreviated", locale=locale)
    weekday_full = get_day_names("wide", locale=locale)
    weeks = calendar_module.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    others = {key: value for key, value in values.items() if key != "month"}
    return render_template(
        "events_calendar.html", weeks=weeks, days=days, month=month, values=values, problem=problem,
        title=format_skeleton("yMMMM", month, locale=locale),
        today=now().astimezone(ZoneInfo(current_app.config["TIMEZONE"])).date(),
        weekdays=[(weekday_names[i], weekday_full[i]) for i in range(7)],
        previous_url=_url("pages.month_calendar", others, month=f"{_shift(month, -1):%Y-%m}"),
        next_url=_url("pages.month_calendar", others, month=f"{_shift(month, 1):%Y-%m}"),
        list_url=_url("pages.event_list", values), **_filter_choices(),
    ), status


# --- registering ----------------------------------------------------------------------------------

def _field_errors(exc: Invalid) -> dict[str, str]:
    """The refused fields, each with a message in the page's language."""
    errors: dict[str, str] = {}
    for name, message in exc.fields.items():
        field = name.split(".", 1)[0]
        if field == "phone" and "mainland" in message:
            errors["phone"] = str(MAINLAND_ONLY)
        elif field == "consent" and "changed" in message:
            errors["consent"] = str(NOTICE_CHANGED)
        elif field == "code" and exc.code in CODE_MESSAGES:
            errors["code"] = str(CODE_MESSAGES[exc.code])
        elif field in FIELD_MESSAGES:
            errors.setdefault(field, str(FIELD_MESSAGES[field]))
    return errors


def _remember(registration_id: int, token: str) -> None:
    """Keep the private token for the confirmation page (the signed session cookie, never a URL)."""
    kept = {key: value for key, value in (session.get("registered") or {}).items() if value[1] + CONFIRMATION_TTL > time.time()}
    kept[str(registration_id)] = [token, int(time.time())]
    session["registered"] = dict(sorted(kept.items(), key=lambda item: item[1][1])[-KEEP:])


def _remembered(registration_id: int) -> str | None:
    entry = (session.get("registered") or {}).get(str(registration_id))
    if not entry or entry[1] + CONFIRMATION_TTL <= time.time():
        return None
    return str(entry[0])


def _forget(registration_id: int) -> None:
    kept = dict(session.get("registered") or {})
    if kept.pop(str(registration_id), None) is not None:
        session["registered"] = kept


def _form_values() -> dict[str, Any]:
    """What the registration form sent, to show it again as typed."""
    form = request.form
    return {"name": form.get("name", ""), "phone": form.get("phone", ""), "channels": form.getlist("channels"),
            "consent": form.get("consent", ""), "code": form.get("code", ""), "verification_id": form.get("verification_id", "")}


def _form_again(event: Event, values: dict[str, Any], status: int, **shown: Any) -> tuple[str, int]:
    return render_template("event.html", **event_context(event, values=values, **shown)), status


@bp.post("/events/<int:event_id>/register")
@limiter.shared_limit(registration_limit, scope=REGISTRATION_SCOPE, error_message=lambda: str(TOO_MANY))
def register(event_id: int) -> tuple[str, int] | Response:
    """The event page's registration form: a seat or the waitlist, then the confirmation page."""
    event = public_event(event_id)
    values = _form_values()
    try:
        try:
            body = RegistrationCreate.model_validate({
                "name": values["name"], "phone": values["phone"], "channels": values["channels"],
                "consent": values["consent"] or None, "verification_id": values["verification_id"] or None,
                "code": values["code"] or None,
            })
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        proof = verification.prove_for_registration(body.phone, body.verification_id, body.code)
        registration, token = operations.register(
            event, name=body.name, phone=body.phone, channels=[channel.value for channel in body.channels or []],
            consent_version=body.consent, verified=proof is not None,
        )
    except Invalid as exc:
        db.session.rollback()
        errors = _field_errors(exc)
        problem = None if errors else gettext("Please correct the fields marked below.")
        return _form_again(event, values, 422, errors=errors, problem=problem)
    except NotFound:
        db.session.rollback()
        return _form_again(event, values, 422, errors={"code": str(CODE_MESSAGES["no_code"])})
    except Conflict as exc:
        db.session.rollback()
        return _form_again(event, values, 409, problem=str(CONFLICTS.get(exc.code, CONFLICTS["registration_closed"])))
    if proof is not None:
        remember_person(verification.open_session(proof))
    db.session.commit()
    _remember(registration.id, token)
    return redirect(url_for("pages.confirmation", registration_id=registration.id), code=303)


@bp.post("/events/<int:event_id>/register/code")
@limiter.shared_limit(verification_limit, scope="verification", error_message=lambda: str(TOO_MANY_CODES))
def send_registration_code(event_id: int) -> tuple[str, int]:
    """The form's "Send code" button: text a code to the number, and show the form again, as typed."""
    event = public_event(event_id)
    values = _form_values()
    if not RegistrationForm().validate_on_submit():
        abort(400)
    try:
        phone = verification.parse_phone(values["phone"])
        row, code = verification.request_code(phone)
    except Invalid:
        db.session.rollback()
        return _form_again(event, values, 422, errors={"phone": str(FIELD_MESSAGES["phone"])})
    except ApiTooMany:
        db.session.rollback()
        return _form_again(event, values, 429, problem=str(TOO_MANY_CODES))
    db.session.commit()
    if not verification.send_code(row, phone, code):
        return _form_again(event, values, 503, problem=str(CODE_NOT_SENT))
    values = {**values, "verification_id": row.id, "code": ""}
    sent = gettext("A code was texted to %(phone)s. It is valid for 10 minutes.", phone=mask_phone(phone))
    return _form_again(event, values, 200, sent=sent)


@bp.errorhandler(TooManyRequests)
def _too_many(exc: TooManyRequests) -> tuple[str, int] | Response | TooManyRequests:
    """Only the registration form is limited: show it again with the reason."""
    event_id = (request.view_args or {}).get("event_id")
    if request.endpoint not in ("pages.register", "pages.send_registration_code") or event_id is None:
        return error_page(exc)
    problem = TOO_MANY if request.endpoint == "pages.register" else TOO_MANY_CODES
    return _form_again(public_event(event_id), _form_values(), 429, problem=str(problem))


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int] | Response:
    """The registration form sent with an expired token (open over an hour): the form again as typed
    (but not the texted code), with a fresh token and the reason; nothing is registered."""
    event_id = (request.view_args or {}).get("event_id")
    if request.endpoint not in ("pages.register", "pages.send_registration_code") or event_id is None:
        return csrf_failed(exc)
    return _form_again(public_event(event_id), {**_form_values(), "code": ""}, 400, problem=str(CSRF_EXPIRED))


@bp.get("/registrations/<int:registration_id>/confirmation")
def confirmation(registration_id: int) -> str:
    """Seated or waitlisted, and the private links: shown only to the browser that registered."""
    token = _remembered(registration_id)
    registration = operations.get_by_token(token) if token else None
    if registration is None or registration.id != registration_id:
        abort(404)
    event = registration.event
    tz = ZoneInfo(event.timezone)
    return render_template(
        "registration_confirmation.html", registration=registration, event=event, token=token,
        seated=registration.status == RegistrationStatus.REGISTERED,
        cancelled=registration.status == RegistrationStatus.CANCELLED,
        position=operations.waitlist_position(registration), form=RegistrationForm(),
        starts=format_local_datetime(event.starts_at, tz), starts_iso=event.starts_at.astimezone(tz).isoformat(),
        manage=manage_url(registration.id), calendar=registration_links(registration),
        verified=registration.phone_verified_at is not None,
    )


@bp.route("/registrations/cancel", methods=["GET", "POST"])
def cancel() -> tuple[str, int] | Response:
    """Cancel by the private code (in the POST body, never the URL); the waitlist moves up."""
    form = RegistrationForm()
    if request.method == "GET":
        return render_template("registration_cancel.html", form=form, error=None), 200
    token = request.form.get("token", "").strip()
    registration = operations.get_by_token(token) if token and len(token) <= 100 else None
    if registration is None:
        return render_template("registration_cancel.html", form=form, error=gettext("No registration has this code.")), 422
    event = registration.event
    try:
        operations.cancel_registration(registration)
    except Conflict:
        db.session.rollback()
        flash(gettext("This registration was cancelled already."))
    else:
        db.session.commit()
        flash(gettext("Your registration is cancelled."))
    _forget(registration.id)
    return redirect(url_for("pages.event_page", event_id=event.id), code=303)

