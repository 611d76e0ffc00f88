"""The organizers' event pages (login required; on the ``pages`` blueprint, thin).

* ``GET /organizer/events``: the events of the organizations the user may read (drafts
  included, as ``GET /api/v1/events`` shows them to that user), filtered by kind, status,
  organization, month and text (the API's :class:`EventListQuery`), 20 a page.
* ``GET/POST /organizer/events/new?kind=<kind>`` and ``GET/POST /organizer/events/<id>/edit``:
  one form per kind (:mod:`scheduler.pages.event_form`), checked by the API's schemas and saved
  by :func:`operations.create_event` / :func:`operations.update_event` (so a published event's
  participants and partners are told of a change as the API tells them). The second button,
  "Preview reminders", saves nothing and shows the reminder schedule
  (:mod:`scheduler.pages.event_preview`).
* ``GET /organizer/events/<id>``: everything about one event, with the editors' actions:
  ``POST …/publish``, ``GET/POST …/cancel`` (a confirmation saying who will be told),
  ``GET/POST …/outcome`` (when the API would take one).

Permissions are the API's: reading needs a role in the event's organization (a draft of
another organization is a 404, another organization's event a 403), changing needs the
editor role; buttons a user may not use are not shown, and their POSTs are refused (403).
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, gettext, lazy_gettext
from flask_login import current_user, login_required
from pydantic import ValidationError
from werkzeug.wrappers import Response

from scheduler.api.errors import Conflict, Invalid, NotFound, from_validation_error
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can, readable_orgs
from scheduler.events import operations
from scheduler.events.kinds import KINDS, Kind, validate_details
from scheduler.events.models import Event, Status
from scheduler.events.presenters import present_event
from scheduler.events.queries import get_visible_event, list_events
from scheduler.events.schemas import CancelBody, EventCreate, EventListQuery, EventUpdate, OutcomeBody
from scheduler.events.times import Times, normalize_times
from scheduler.extensions import db
from scheduler.feeds.import_views import editable_orgs
from scheduler.i18n import format_local_datetime, pick
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug
from scheduler.pages.event_form import (
    COMMON_FIELDS, Parsed, before_words, blank_values, detail_fields, event_values, field_errors, form_values, parse_form,
    reminders_help, sector_choices, shown_details, words_list,
)
from scheduler.pages.event_preview import Preview, reminder_preview, unsaved_event
from scheduler.pages.views import bp
from scheduler.registrations.operations import registration_closes_at, seat_counts
from scheduler.reminders.plan import CONTEST_PLAN

PER_PAGE = 20
FILTERS = ("kind", "status", "org", "month", "q")

#: Each status in words.
STATUS_NAMES = {
    Status.DRAFT: lazy_gettext("Draft"),
    Status.PUBLISHED: lazy_gettext("Published"),
    Status.CANCELLED: lazy_gettext("Cancelled"),
    Status.COMPLETED: lazy_gettext("Completed"),
}
#: What the outcome form's fields must be.
OUTCOME_FIELDS = (
    ("attendance", lazy_gettext("Attendance")),
    ("achievements_presented", lazy_gettext("Achievements presented")),
    ("achievements_matched", lazy_gettext("Achievements matched")),
    ("achievements_commercialized", lazy_gettext("Achievements commercialized")),
)
_WHOLE = lazy_gettext("Give a whole number (0 or more), or leave it empty.")
OUTCOME_MESSAGES = {
    "More achievements matched than presented.": lazy_gettext("More achievements matched than presented."),
    "More achievements commercialized than matched.": lazy_gettext("More achievements commercialized than matched."),
}
NOT_EDITABLE = lazy_gettext("A cancelled or completed event cannot be edited.")
PROBLEM = lazy_gettext("Please correct the fields marked below.")


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _event(event_id: int, needed: Role) -> Event:
    """The event, if the user holds ``needed`` in its organization: 404 for an unknown event or another
    organization's draft (as the API says), 403 otherwise."""
    user = _user()
    try:
        event = get_visible_event(event_id, user)
    except NotFound:
        abort(404)
    if not can(user, event.org_id, needed):
        abort(403)
    return event



def _when(event: Event) -> str:
    """The local start (the date alone for an all-day event)."""
    tz = ZoneInfo(event.timezone)
    if event.all_day:
        return format_date(event.starts_at.astimezone(tz).date(), "medium")
    return format_local_datetime(event.starts_at, tz)


def _kind_name(kind: str) -> str:
    info = KINDS[Kind(kind)]
    return pick(info.name_zh, info.name_en)


# --- the table ------------------------------------------------------------------------------------

def _page_number() -> int | None:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 1 <= int(text) <= 100_000 else None


def _list_url(values: dict[str, str], **changes: Any) -> str:
    args = {**values, **{k: v for k, v in changes.items() if v is not None}}
    if "lang" in request.args:
        args["lang"] = request.args["lang"]
    query = urlencode(args)
    return url_for("pages.organizer_events") + (f"?{query}" if query else "")


@bp.get("/organizer/events")
@login_required
def organizer_events() -> tuple[str, int]:
    """The events table of the user's organizations, with filters and pages."""
    user = _user()
    values = {key: request.args.get(key, "").strip() for key in FILTERS if request.args.get(key, "").strip()}
    page = _page_number()
    orgs = readable_orgs(user)
    status, problem = 200, None
    events: list[Event] = []
    total = 0
    if values.get("org") and values["org"] not in {o.slug for o in orgs}:
        if get_org_by_slug(values["org"]) is not None:
            abort(403)
        status, problem = 400, gettext("Some filters are not valid; showing none.")
    # everything the user may read: their organizations, each with those below it (all, for an administrator)
    scope = values.get("org") or (None if user.is_admin else ",".join(sorted({m.org.slug for m in user.memberships})))
    if problem is None and page is None:
        status, problem = 400, gettext("Some filters are not valid; showing none.")
    elif problem is None and scope != "":
        try:
            query = EventListQuery.model_validate(
                {**values, **({"org": scope} if scope else {}), "page": page, "per_page": PER_PAGE})
            events, total = list_events(query, user)
        except (ValidationError, Invalid):
            status, problem = 400, gettext("Some filters are not valid; showing none.")
    counts = seat_counts([e.id for e in events])
    rows = [{
        "event": e, "kind": _kind_name(e.kind), "org": pick(e.org.name_zh, e.org.name_en), "when": _when(e),
        "when_iso": e.starts_at.astimezone(ZoneInfo(e.timezone)).isoformat(), "status": str(STATUS_NAMES[Status(e.status)]),
        "registered": counts[e.id]["registered"], "waitlisted": counts[e.id]["waitlisted"],
    } for e in events]
    pages = max(1, -(-total // PER_PAGE))
    current = page or 1
    can_create = bool(editable_orgs(user))
    return render_template(
        "organizer_events.html", rows=rows, total=total, values=values, problem=problem, orgs=orgs,
        kinds=[(k.value, pick(i.name_zh, i.name_en)) for k, i in KINDS.items()],
        statuses=[(s.value, str(name)) for s, name in STATUS_NAMES.items()],
        new_links=[(k.value, pick(i.name_zh, i.name_en)) for k, i in KINDS.items()] if can_create else [],
        page=current, pages=pages,
        previous_url=_list_url(values, page=current - 1) if current > 1 else None,
        next_url=_list_url(values, page=current + 1) if current < pages else None,
    ), status


# --- the form -------------------------------------------------------------------------------------

def _kind_arg() -> Kind:
    try:
        return Kind(request.args.get("kind", ""))
    except ValueError:
        abort(404)


def _form_page(kind: Kind, orgs: list[Organization], values: dict[str, str], *, event: Event | None = None,
               errors: dict[str, str] | None = None, general: list[str] | None = None, preview: Preview | None = None,
               locked: str | None = None, status: int = 200) -> tuple[str, int]:
    choices = [(o.slug, pick(o.name_zh, o.name_en)) for o in orgs]
    if event is not None and event.org.slug not in {slug for slug, _ in choices}:
        choices.insert(0, (event.org.slug, pick(event.org.name_zh, event.org.name_en)))
    action = (url_for("pages.organizer_event_edit", event_id=event.id) if event is not None
              else url_for("pages.organizer_event_new", kind=kind.value))
    return render_template(
        "organizer_event_form.html", kind=kind, kind_name=_kind_name(kind), event=event, values=values,
        errors=errors or {}, general=general or [], preview=preview, locked=locked, action=action,
        common={f.name: f for f in COMMON_FIELDS}, details=detail_fields(kind), org_choices=choices,
        sectors=sector_choices(), reminders_help=reminders_help(kind),
    ), status


def _times(raw: dict[str, Any], errors: dict[str, str]) -> Times | None:
    """The event's times as the operations check them (their refusals added to ``errors``)."""
    start, end = raw["starts_at"], raw["ends_at"]
    if not isinstance(start, dt.date) or not (end is None or isinstance(end, dt.date)) or "starts_at" in errors:
        return None
    try:
        return normalize_times(start, end, all_day=bool(raw["all_day"]), tz_name=raw["timezone"], rule_text=raw["rrule"])
    except Invalid as exc:
        found, _ = field_errors(exc.fields)
        for name, message in found.items():
            errors.setdefault(name, message)
        return None


def _check(kind: Kind, parsed: Parsed, event: Event | None) -> tuple[EventCreate | EventUpdate | None, Times | None, dict[str, Any], dict[str, str], list[str]]:
    """Every check the API makes before saving, all at once: (body, times, details, errors, general problems)."""
    errors, general = dict(parsed.errors), []
    raw = dict(parsed.raw)
    if event is not None:
        raw.pop("kind")
    body: EventCreate | EventUpdate | None = None
    try:
        body = (EventCreate if event is None else EventUpdate).model_validate(raw)
    except ValidationError as exc:
        found, general = field_errors(from_validation_error(exc).fields, parsed)
        for name, message in found.items():
            errors.setdefault(name, message)
    times = _times(raw, errors)
    details, refused = _details(kind, raw["details"])
    found, more = field_errors(refused, parsed)
    general += more
    for name, message in found.items():
        errors.setdefault(name, message)
    return body, times, details, errors, general


def _details(kind: Kind, details: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The details as :func:`validate_details` keeps them, or what it refuses. A model's checks across
    fields (ages in order, contest stages in order) run only once its fields are valid, so the refused
    fields are left out and the rest checked again: the form shows every problem at once."""
    refused: dict[str, str] = {}
    remaining = dict(details)
    for _ in range(3):
        try:
            checked = validate_details(kind, remaining)
        except Invalid as exc:
            new = {path: message for path, message in exc.fields.items() if path not in refused}
            refused |= new
            keys = {path.split(".")[1] for path in new if path.count(".") >= 1}
            if not new or not keys & remaining.keys():
                break
            remaining = {key: value for key, value in remaining.items() if key not in keys}
        else:
            return (checked, {}) if not refused else ({}, refused)
    return {}, refused


def _submit(kind: Kind, orgs: list[Organization], event: Event | None) -> tuple[str, int] | Response:
    """Check the form; preview its reminders, or save it (then 303 to the event's page)."""
    user = _user()
    values = form_values(kind, request.form)
    parsed = parse_form(kind, request.form)
    body, times, details, errors, general = _check(kind, parsed, event)
    org = next((o for o in orgs if o.slug == parsed.raw["org"]), None)
    if org is None and "org" not in errors:
        if event is not None and parsed.raw["org"] == event.org.slug:
            org = event.org
        elif get_org_by_slug(parsed.raw["org"]) is not None:
            abort(403)  # the API's require_role: not an editor there
        else:
            errors["org"] = gettext("Choose one of your organizations.")
    page = lambda **extra: _form_page(kind, orgs, values, event=event, **extra)  # noqa: E731
    if errors or general or body is None or times is None or org is None:
        return page(errors=errors, general=general or [str(PROBLEM)], status=422)
    if request.form.get("action") == "preview":
        unsaved = unsaved_event(
            kind=kind, title=body.title or "", venue=body.venue or "", address=body.address or "", times=times,
            all_day=bool(body.all_day), timezone=parsed.raw["timezone"], details=details, reminders=body.reminders,
            event_id=event.id if event is not None else None, exdates=event.exdates if event is not None else None,
        )
        return page(preview=reminder_preview(unsaved))
    try:
        if event is None:
            fields = body.model_dump(exclude={"org", "reminders"}, exclude_unset=True)
            event = operations.create_event(org=org, created_by=user, reminders=body.reminders, **fields)
        else:
            operations.update_event(event, {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "org"}, org=org)
    except Invalid as exc:
        db.session.rollback()
        found, general = field_errors(exc.fields, parsed)
        return page(errors=found, general=general or [str(PROBLEM)], status=422)
    except Conflict:
        db.session.rollback()
        return page(locked=str(NOT_EDITABLE), status=409)
    db.session.commit()
    flash(gettext("Saved"))
    return redirect(url_for("pages.organizer_event", event_id=event.id), code=303)


@bp.route("/organizer/events/new", methods=["GET", "POST"])
@login_required
def organizer_event_new() -> tuple[str, int] | Response:
    """The form of a new event of ``?kind=`` (a draft once saved), in one of the user's organizations."""
    kind = _kind_arg()
    orgs = editable_orgs(_user())
    if not orgs:
        abort(403)
    if request.method == "POST":
        return _submit(kind, orgs, None)
    return _form_page(kind, orgs, blank_values(kind, orgs[0].slug))


@bp.route("/organizer/events/<int:event_id>/edit", methods=["GET", "POST"])
@login_required
def organizer_event_edit(event_id: int) -> tuple[str, int] | Response:
    """The event's form; a cancelled or completed event is not edited (409)."""
    event = _event(event_id, Role.EDITOR)
    kind = Kind(event.kind)
    orgs = editable_orgs(_user())
    if event.status in (Status.CANCELLED, Status.COMPLETED):
        return _form_page(kind, orgs, event_values(event), event=event, locked=str(NOT_EDITABLE), status=409)
    if request.method == "POST":
        return _submit(kind, orgs, event)
    return _form_page(kind, orgs, event_values(event), event=event)


# --- one event ------------------------------------------------------------------------------------

def _reminder_words(event: Event) -> list[str]:
    """The event's reminder plan in words."""
    if event.kind == Kind.CONTEST and event.reminder_offsets is None:
        return [before_words(f"{anchor}:{offset}") for anchor, offset in CONTEST_PLAN]
    return [before_words(offset) for offset in operations.effective_reminders(event)]


def _outcome_refusal(event: Event) -> str | None:
    """Why no outcome can be recorded for the event yet (the API's 409), in words; ``None`` when it can."""
    try:
        operations.check_outcome_allowed(event)
    except Conflict as exc:
        if exc.code == "not_started":
            return gettext("The event has not taken place yet: its outcome can be recorded once it has started.")
        return gettext("Outcomes are recorded for published events; this one is %(status)s.",
                       status=str(STATUS_NAMES[Status(event.status)]).lower())
    return None


@bp.get("/organizer/events/<int:event_id>")
@login_required
def organizer_event(event_id: int) -> str:
    """Everything about one event, and what an editor can do with it."""
    event = _event(event_id, Role.VIEWER)
    tz = ZoneInfo(event.timezone)
    editor = can(_user(), event.org_id, Role.EDITOR)
    open_ = event.status in (Status.DRAFT, Status.PUBLISHED)
    return render_template(
        "organizer_event.html", event=event, shown=present_event(event), kind_name=_kind_name(event.kind),
        org_name=pick(event.org.name_zh, event.org.name_en), status_name=str(STATUS_NAMES[Status(event.status)]),
        starts=format_local_datetime(event.starts_at, tz), ends=format_local_datetime(event.ends_at, tz),
        starts_iso=event.starts_at.astimezone(tz).isoformat(), ends_iso=event.ends_at.astimezone(tz).isoformat(),
        closes=format_local_datetime(registration_closes_at(event), tz),
        details=shown_details(event), reminders=words_list(_reminder_words(event)),
        default_plan=event.reminder_offsets is None, achievements=Kind(event.kind) in (Kind.MATCHMAKING, Kind.CONTEST),
        can_edit=editor and open_, can_publish=editor and event.status == Status.DRAFT, can_cancel=editor and open_,
        can_record=editor and _outcome_refusal(event) is None,
        outcome_recorded=format_local_datetime(event.outcome.recorded_at, tz) if event.outcome else None,
    )


@bp.post("/organizer/events/<int:event_id>/publish")
@login_required
def organizer_event_publish(event_id: int) -> Response:
    """Publish a draft: it appears in the lists and calendars, and registration opens."""
    event = _event(event_id, Role.EDITOR)
    try:
        operations.publish_event(event)
    except Conflict:
        db.session.rollback()
        flash(gettext("Only a draft can be published."))
    else:
        db.session.commit()
        flash(gettext("Published: the event is public and registration is open."))
    return redirect(url_for("pages.organizer_event", event_id=event_id), code=303)


@bp.route("/organizer/events/<int:event_id>/cancel", methods=["GET", "POST"])
@login_required
def organizer_event_cancel(event_id: int) -> tuple[str, int] | Response:
    """Confirm the cancellation, saying who will be told; the reason is required."""
    event = _event(event_id, Role.EDITOR)
    page = lambda **extra: render_template(  # noqa: E731
        "organizer_event_cancel.html", event=event, audience=operations.cancellation_audience(event),
        kind_name=_kind_name(event.kind), starts=format_local_datetime(event.starts_at, ZoneInfo(event.timezone)),
        **{"reason": "", "error": None, "refused": None, **extra},
    )
    if event.status not in (Status.DRAFT, Status.PUBLISHED):
        return page(refused=gettext("This event is %(status)s: it cannot be cancelled.",
                                    status=str(STATUS_NAMES[Status(event.status)]).lower())), 409
    if request.method == "GET":
        return page(), 200
    reason = request.form.get("reason", "")
    try:
        body = CancelBody.model_validate({"reason": reason})
    except ValidationError:
        return page(reason=reason, error=gettext("Give the reason (at most 500 characters): participants will read it.")), 422
    operations.cancel_event(event, body.reason)
    db.session.commit()
    flash(gettext("The event is cancelled."))
    return redirect(url_for("pages.organizer_event", event_id=event_id), code=303)


def _outcome_values(event: Event) -> dict[str, str]:
    outcome = event.outcome
    if outcome is None:
        return {}
    values = {name: "" if getattr(outcome, name) is None else str(getattr(outcome, name)) for name, _ in OUTCOME_FIELDS}
    values["notes"] = outcome.notes or ""
    return values


@bp.route("/organizer/events/<int:event_id>/outcome", methods=["GET", "POST"])
@login_required
def organizer_event_outcome(event_id: int) -> tuple[str, int] | Response:
    """Record (or correct) what the event achieved, once the API would take it."""
    event = _event(event_id, Role.EDITOR)
    achievements = Kind(event.kind) in (Kind.MATCHMAKING, Kind.CONTEST)
    fields = [(name, label) for name, label in OUTCOME_FIELDS if achievements or name == "attendance"]
    page = lambda values, errors=None, refused=None: render_template(  # noqa: E731
        "organizer_event_outcome.html", event=event, fields=fields, values=values, errors=errors or {}, refused=refused,
        kind_name=_kind_name(event.kind), starts=format_local_datetime(event.starts_at, ZoneInfo(event.timezone)),
    )
    refused = _outcome_refusal(event)
    if refused:
        return page({}, refused=refused), 409
    if request.method == "GET":
        return page(_outcome_values(event)), 200
    values = {name: request.form.get(name, "") for name, _ in fields} | {"notes": request.form.get("notes", "")}
    raw = {name: values[name].strip() or None for name, _ in fields} | {"notes": values["notes"]}
    errors: dict[str, str] = {}
    try:
        body = OutcomeBody.model_validate(raw)
        operations.record_outcome(event, body.model_dump(), user=_user())
    except (ValidationError, Invalid) as exc:
        db.session.rollback()
        refusal = from_validation_error(exc) if isinstance(exc, ValidationError) else exc
        for name, english in refusal.fields.items():
            if name == "notes":
                errors[name] = gettext("Give at most 5,000 characters.")
            else:
                errors[name] = str(OUTCOME_MESSAGES.get(english, _WHOLE))
        return page(values, errors=errors), 422
    db.session.commit()
    flash(gettext("Saved"))
    return redirect(url_for("pages.organizer_event", event_id=event_id), code=303)

