"""The organizers' view of one event's registrations: the seated people, the waitlist, the
cancelled; check-in at the door; the CSV export.

Routes (on the ``pages`` blueprint, login required; thin: the state changes are
:func:`scheduler.registrations.operations.check_in` and ``undo_check_in``):

* ``GET /organizer/events/<id>/registrations``: the counts, then three tables — seated
  (``#seated``: check-in buttons for editors while the door is open), the waitlist in its order
  with each position (``#waitlist``), the cancelled — :data:`PER_PAGE` a page each
  (``seated_page``, ``waitlist_page``, ``cancelled_page``). ``?q=`` finds people by name or by
  the last 4 digits of their phone number (editors may type more digits, up to the full number).
* ``POST /organizer/registrations/<id>/check-in`` and ``…/undo-check-in``: editors; ``303``
  back to the list keeping ``q`` (so the door staff search the next person), with a flash
  saying who was checked in or why not.
* ``GET /organizer/events/<id>/registrations.csv``: every registration (UTF-8 with a BOM, the
  header row in the page's language, times ISO 8601 in the event's time zone).

Permissions are the API's: members of the event's organization (or of one above it) read, and
viewers see phone numbers masked (:func:`scheduler.util.phone.mask_phone`) on the page, in the
search (their digit searches use the last 4 digits only) and in the CSV; editors and managers
see them in full and check people in. A draft the user may not see is a 404, anyone else a 403.

**Check-in window** (:func:`scheduler.registrations.operations.check_in_window`): from 24 hours
before the start until the end of the local day on which the event (for a series, its last
occurrence) ends; never for a draft or cancelled event.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, Select, func, or_, select
from werkzeug.wrappers import Response

from scheduler.api.errors import Conflict, NotFound
from scheduler.audit.operations import record
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can
from scheduler.events.models import Event, Status
from scheduler.events.queries import MAX_ID, get_visible_event
from scheduler.extensions import db
from scheduler.i18n import current_language, format_local_datetime
from scheduler.pages.views import bp
from scheduler.registrations import operations
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.phone import mask_phone
from scheduler.util.text import clean_text

#: Rows of each table per page.
PER_PAGE = 100
#: The longest search text taken.
MAX_QUERY = 100
#: A cell starting with one of these is a formula to a spreadsheet: it gets a leading ``'``.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

STATUS_LABELS = {
    RegistrationStatus.REGISTERED.value: lazy_gettext("Seated"),
    RegistrationStatus.WAITLISTED.value: lazy_gettext("Waitlisted"),
    RegistrationStatus.CANCELLED.value: lazy_gettext("Cancelled"),
}
EVENT_STATUS_LABELS = {
    Status.DRAFT.value: lazy_gettext("Draft"),
    Status.CANCELLED.value: lazy_gettext("Cancelled"),
    Status.COMPLETED.value: lazy_gettext("Completed"),
}
CHANNEL_LABELS = {"sms": lazy_gettext("Text message")}
#: Shown in place of the name and number of a registration whose personal data is erased.
ERASED = lazy_gettext("(erased)")
CSV_HEADER = (
    lazy_gettext("Status"), lazy_gettext("Waitlist position"), lazy_gettext("Name"), lazy_gettext("Phone"),
    lazy_gettext("Reminders by"), lazy_gettext("Registered at"), lazy_gettext("Seated at"),
    lazy_gettext("Checked in at"), lazy_gettext("Cancelled at"),
)
#: Why the door is closed, or a check-in refused, by the operation's code (``name``: who, ``when``: a local time).
REFUSALS = {
    "waitlisted": lazy_gettext("%(name)s is on the waitlist, without a seat: only seated people can check in."),
    "already_cancelled": lazy_gettext("%(name)s cancelled the registration: there is nothing to check in."),
    "event_draft": lazy_gettext("The event is a draft: nobody can check in."),
    "event_cancelled": lazy_gettext("The event is cancelled: nobody can check in."),
    "check_in_not_open": lazy_gettext("Check-in opens at %(when)s, 24 hours before the start."),
    "check_in_closed": lazy_gettext("Check-in closed at %(when)s, at the end of the event's last day."),
    "already_checked_in": lazy_gettext("%(name)s was checked in already, at %(when)s."),
    "not_checked_in": lazy_gettext("%(name)s is not checked in."),
}


@dataclass
class Moment:
    """A time as the page shows it: local text and ISO 8601 for ``<time datetime>``."""

    text: str
    iso: str


@dataclass
class Row:
    """One registration as the tables show it."""

    id: int
    name: str
    phone: str
    channels: str
    registered: Moment | None
    seated: Moment | None
    checked_in: Moment | None
    cancelled: Moment | None
    promoted: bool
    position: int | None


@dataclass
class Section:
    """One table: its rows on this page, how many match, and the pager."""

    key: str
    rows: list[Row]
    total: int
    page: int
    pages: int
    previous_url: str | None
    next_url: str | None


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _readable_event(event_id: int, user: User) -> Event:
    """The event for a member of its organization (viewer and up); 404 or 403 otherwise."""
    try:
        event = get_visible_event(event_id, user)
    except NotFound:
        abort(404)
    if not can(user, event.org_id, Role.VIEWER):
        abort(403)
    return event


def _moment(value: dt.datetime | None, tz: ZoneInfo) -> Moment | None:
    if value is None:
        return None
    return Moment(format_local_datetime(value, tz), value.astimezone(tz).isoformat(timespec="seconds"))


def _channels(channels: list[str]) -> str:
    separator = "、" if current_language() == "zh" else ", "
    return separator.join(str(CHANNEL_LABELS.get(channel, channel)) for channel in channels)


def _query_text() -> str:
    return " ".join(request.values.get("q", "").split())[:MAX_QUERY]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search(text: str, full_phone: bool) -> ColumnElement[bool]:
    """Names containing ``text``; numbers ending in its digits (at least 4; only the last 4, which
    the masked number shows, unless ``full_phone``)."""
    conditions = [Registration.name.ilike(f"%{_escape_like(text)}%", escape="\\")]
    digits = re.sub(r"[\s()+\-]", "", text)
    if digits.isdigit() and len(digits) >= 4:
        conditions.append(Registration.phone.endswith(digits if full_phone else digits[-4:], autoescape=True))
    return or_(*conditions)


def _counts(event_id: int) -> dict[str, int]:
    """How many are seated, waitlisted, cancelled, and seated and checked in."""
    counts = dict.fromkeys(("registered", "waitlisted", "cancelled", "checked_in"), 0)
    rows = db.session.execute(
        select(Registration.status, func.count(), func.count(Registration.checked_in_at))
        .where(Registration.event_id == event_id).group_by(Registration.status)
    )
    for status, count, checked_in in rows:
        counts[status] = count
        if status == RegistrationStatus.REGISTERED:
            counts["checked_in"] = checked_in
    return counts


def _page_arg(name: str) -> int | None:
    """The page asked for, ``None`` for the first (so links leave it out)."""
    text = request.args.get(name, "1")
    return int(text) if text.isdigit() and 1 < int(text) <= 100_000 else None


def _list_url(event_id: int, **args: Any) -> str:
    """The list's URL with ``args`` (empty ones dropped), keeping ``?lang=``."""
    if request.args.get("lang"):
        args.setdefault("lang", request.args["lang"])
    return url_for("pages.organizer_registrations", event_id=event_id, **{k: v for k, v in args.items() if v})


def _phone(phone: str | None, full: bool) -> str:
    """The number as the user may see it (masked unless ``full``); nothing once erased."""
    if phone is None:
        return ""
    return phone if full else mask_phone(phone)


def _row(registration: Registration, tz: ZoneInfo, full_phone: bool, positions: dict[int, int]) -> Row:
    return Row(
        id=registration.id, name=registration.name or str(ERASED),
        phone=_phone(registration.phone, full_phone),
        channels=_channels(registration.channels or []),
        registered=_moment(registration.created_at, tz),
        seated=_moment(registration.seated_at, tz), checked_in=_moment(registration.checked_in_at, tz),
        cancelled=_moment(registration.cancelled_at, tz), promoted=operations.was_promoted(registration),
        position=positions.get(registration.id),
    )


def _section(key: str, stmt: Select, event: Event, view: dict[str, Any], positions: dict[int, int], full_phone: bool) -> Section:
    """One table's page of rows; ``view`` holds the list's arguments (``q`` and each table's page)."""
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(view[f"{key}_page"] or 1, pages)
    rows = db.session.scalars(stmt.offset((page - 1) * PER_PAGE).limit(PER_PAGE))
    tz = ZoneInfo(event.timezone)

    def url(to: int) -> str:
        return _list_url(event.id, **{**view, f"{key}_page": to if to > 1 else None}, _anchor=f"{key}-heading")

    return Section(
        key, [_row(r, tz, full_phone, positions) for r in rows], total, page, pages,
        url(page - 1) if page > 1 else None, url(page + 1) if page < pages else None,
    )


def _door_message(event: Event) -> str | None:
    """Why nobody can check in now, in the page's language; ``None`` while the door is open."""
    refusal = operations.check_in_refusal(event)
    return _refusal_text(refusal, event, "") if refusal is not None else None


def _refusal_text(exc: Conflict, event: Event, name: str, checked_in_at: dt.datetime | None = None) -> str:
    tz = ZoneInfo(event.timezone)
    opens, closes = operations.check_in_window(event)
    when = {
        "check_in_not_open": opens, "check_in_closed": closes, "already_checked_in": checked_in_at,
    }.get(exc.code)
    message = REFUSALS.get(exc.code)
    if message is None:
        return exc.message
    return str(message) % {"name": name, "when": format_local_datetime(when, tz) if when else ""}


@bp.get("/organizer/events/<int:event_id>/registrations")
@login_required
def organizer_registrations(event_id: int) -> Response:
    """An event's registrations: counts, the seated people (checked in or not), the waitlist, the cancelled."""
    user = _user()
    event = _readable_event(event_id, user)
    can_edit = can(user, event.org_id, Role.EDITOR)
    text = _query_text()
    view: dict[str, Any] = {
        "q": text,
        **{f"{key}_page": _page_arg(f"{key}_page") for key in ("seated", "waitlist", "cancelled")},
    }
    base = select(Registration).where(Registration.event_id == event.id)
    if text:
        base = base.where(_search(text, can_edit))
    positions = operations.waitlist_positions(event.id)
    sections = {
        "seated": _section("seated", base.where(Registration.status == RegistrationStatus.REGISTERED.value)
                           .order_by(Registration.seated_at, Registration.id), event, view, positions, can_edit),
        "waitlist": _section("waitlist", base.where(Registration.status == RegistrationStatus.WAITLISTED.value)
                             .order_by(*operations.WAITLIST_ORDER), event, view, positions, can_edit),
        "cancelled": _section("cancelled", base.where(Registration.status == RegistrationStatus.CANCELLED.value)
                              .order_by(Registration.cancelled_at.desc(), Registration.id), event, view, positions, can_edit),
    }
    tz = ZoneInfo(event.timezone)
    door_closed = _door_message(event)
    page = render_template(
        "organizer_registrations.html", event=event, counts=_counts(event.id), sections=sections, q=text,
        found=sum(section.total for section in sections.values()) if text else None,
        starts=_moment(event.starts_at, tz), event_status=EVENT_STATUS_LABELS.get(event.status),
        can_edit=can_edit, door_open=can_edit and door_closed is None, door_closed=door_closed,
        seated_page=sections["seated"].page, clear_url=_list_url(event.id),
        csv_url=url_for("pages.organizer_registrations_csv", event_id=event.id, lang=request.args.get("lang") or None),
    )
    if can_edit:  # full numbers were shown
        shown = sum(len(section.rows) for section in sections.values())
        record("registrations.read", f"event:{event.id}", org_id=event.org_id, detail={"shown": shown, "search": bool(text)})
        db.session.commit()
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"  # names and phone numbers
    return response


def _editable_registration(registration_id: int, user: User) -> Registration:
    """The registration, for an editor of its event's organization; 404 or 403 otherwise."""
    registration = db.session.get(Registration, registration_id) if 0 < registration_id <= MAX_ID else None
    if registration is None:
        abort(404)
    event = _readable_event(registration.event_id, user)
    if not can(user, event.org_id, Role.EDITOR):
        abort(403)
    return registration


def _at_the_door(registration_id: int, check_in: bool) -> Response:
    """Check in (or undo), flash who or why not, and go back to the list with the same search."""
    registration = _editable_registration(registration_id, _user())
    event, name, checked_in_at = registration.event, registration.name, registration.checked_in_at
    event_id = event.id
    try:
        (operations.check_in if check_in else operations.undo_check_in)(registration)
    except Conflict as exc:
        message = _refusal_text(exc, event, name, checked_in_at)
        db.session.rollback()
        flash(message, "error")
    else:
        db.session.commit()
        done = gettext("%(name)s is checked in.", name=name) if check_in else gettext("Check-in of %(name)s undone.", name=name)
        flash(done, "success")
    seated_page = request.form.get("seated_page", "")
    back = _list_url(event_id, q=_query_text(), seated_page=seated_page if seated_page.isdigit() and seated_page != "1" else None)
    return redirect(back, code=303)


@bp.post("/organizer/registrations/<int:registration_id>/check-in")
@login_required
def organizer_registration_check_in(registration_id: int) -> Response:
    """The door's "Check in" button (editors): a seated person arrived."""
    return _at_the_door(registration_id, check_in=True)


@bp.post("/organizer/registrations/<int:registration_id>/undo-check-in")
@login_required
def organizer_registration_undo_check_in(registration_id: int) -> Response:
    """The door's "Undo check-in" button (editors): the check-in was a mistake."""
    return _at_the_door(registration_id, check_in=False)


# --- the CSV export -------------------------------------------------------------------------------

def csv_cell(value: str) -> str:
    """``value`` made safe for a spreadsheet: a leading ``'`` when it would start a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _sheet_phone(shown: str) -> str:
    """A mainland number as people write it, without ``+86`` (a leading ``+`` reads as a formula)."""
    return shown.removeprefix("+86").strip()


def _iso(value: dt.datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat(timespec="seconds") if value is not None else ""


def _filename(event: Event) -> str:
    """``Content-Disposition``: an ASCII name for old clients, the title (RFC 5987) for the others; no
    control or invisible formatting character (a U+202E would show ``…vsc.exe`` as ``…exe.csv``), even
    from a title stored before input was cleaned."""
    title = clean_text(re.sub(r'[\\/:*?"<>|]', " ", event.title))[:80].strip() or str(event.id)
    readable = f"{title} - {gettext('Registrations')}.csv"
    return f"attachment; filename=\"registrations-{event.id}.csv\"; filename*=UTF-8''{quote(readable, safe='')}"


@bp.get("/organizer/events/<int:event_id>/registrations.csv")
@login_required
def organizer_registrations_csv(event_id: int) -> Response:
    """Every registration of the event as a spreadsheet: seated, then the waitlist in order, then cancelled."""
    user = _user()
    event = _readable_event(event_id, user)
    full_phone = can(user, event.org_id, Role.EDITOR)
    tz = ZoneInfo(event.timezone)
    positions = operations.waitlist_positions(event.id)
    order = {status.value: rank for rank, status in enumerate(RegistrationStatus)}  # seated, waitlisted, cancelled
    registrations = sorted(
        db.session.scalars(select(Registration).where(Registration.event_id == event.id)),
        key=lambda r: (order.get(r.status, 3), positions.get(r.id, 0), r.seated_at or r.created_at, r.id),
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(str(label)) for label in CSV_HEADER])
    for r in registrations:
        cells = [
            str(STATUS_LABELS.get(r.status, r.status)), str(positions.get(r.id, "")), clean_text(r.name) or str(ERASED),
            _sheet_phone(_phone(r.phone, full_phone)), _channels(r.channels or []),
            _iso(r.created_at, tz), _iso(r.seated_at, tz), _iso(r.checked_in_at, tz), _iso(r.cancelled_at, tz),
        ]
        writer.writerow([csv_cell(cell) for cell in cells])
    record("registrations.export", f"event:{event.id}", org_id=event.org_id,
           detail={"rows": len(registrations), "numbers": "full" if full_phone else "masked"})
    db.session.commit()
    response = Response(out.getvalue().encode("utf-8-sig"), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = _filename(event)
    response.headers["Cache-Control"] = "private, no-store"
    return response
