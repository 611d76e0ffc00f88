"""The organizers' delivery log, with replay.

Routes (on the ``pages`` blueprint, login required; thin: :func:`delivery_log` and
:func:`replay_delivery` do the work, with the API's permissions):

* ``GET /organizer/deliveries``: the deliveries of the organizations the user may read, newest
  first, 50 a page, filtered like ``GET /api/v1/deliveries`` (``status``, ``channel``, ``type``,
  ``event``, ``endpoint``: a plain GET form). Phone numbers are masked and robots' keys hidden,
  for every role. A filter the API would refuse shows nothing (400).
* ``POST /organizer/deliveries/<id>/replay``: send a finished delivery again (editor role in the
  organization that owns it). The refusals of the operation (still on its way, the event has
  started, the endpoint is disabled) are flashed in the page's language; either way the answer is
  a 303 back to the log with the same filters.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from pydantic import ValidationError
from werkzeug.wrappers import Response

from scheduler.api.errors import Conflict
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can, readable_org_ids
from scheduler.channels.models import EndpointKind, display_url
from scheduler.channels.queries import visible_endpoints
from scheduler.channels.registry import CHANNELS
from scheduler.channels.schemas import DeliveryQuery
from scheduler.extensions import db
from scheduler.i18n import format_local_datetime
from scheduler.pages.views import bp
from scheduler.reminders import operations
from scheduler.reminders.models import WAITING, DeliveryStatus
from scheduler.reminders.queries import LogEntry, delivery_log, visible_delivery
from scheduler.util.time import now

PER_PAGE = 50
#: The log's filters, named as the API names them.
FILTERS = ("status", "channel", "type", "event", "endpoint")

#: Each status in words, with a mark that does not rely on colour alone.
STATUSES: dict[str, tuple[Any, str]] = {
    DeliveryStatus.PENDING: (lazy_gettext("Waiting"), "…"),
    DeliveryStatus.SENDING: (lazy_gettext("Sending"), "→"),
    DeliveryStatus.SENT: (lazy_gettext("Sent"), "✓"),
    DeliveryStatus.RETRYING: (lazy_gettext("Retrying"), "↻"),
    DeliveryStatus.DEAD: (lazy_gettext("Failed"), "✗"),
    DeliveryStatus.EXPIRED: (lazy_gettext("Expired"), "⌛"),
    DeliveryStatus.CANCELLED: (lazy_gettext("Cancelled"), "⊘"),
    DeliveryStatus.UNKNOWN: (lazy_gettext("Unknown"), "?"),
}
#: The channels a delivery can go on.
CHANNEL_NAMES = {
    "webhook": lazy_gettext("Webhook"),
    "sms": lazy_gettext("Text message"),
    EndpointKind.WECOM.value: lazy_gettext("WeCom group robot"),
    EndpointKind.DINGTALK.value: lazy_gettext("DingTalk robot"),
    EndpointKind.FEISHU.value: lazy_gettext("Feishu robot"),
}
#: What a message is about.
MESSAGE_TYPES = {
    "reminder.due": lazy_gettext("Reminder"),
    "event.published": lazy_gettext("Event published"),
    "event.updated": lazy_gettext("Event changed"),
    "event.cancelled": lazy_gettext("Event cancelled"),
    "registration.promoted": lazy_gettext("Seat from the waitlist"),
    "alert": lazy_gettext("Alert"),
    "ping": lazy_gettext("Test message"),
}
#: Why a replay is refused, by the operation's code.
REFUSALS = {
    "too_late": lazy_gettext("The moment this message was for has passed (the event has started): it is not sent again."),
    "endpoint_disabled": lazy_gettext("The endpoint is disabled: enable it first, then replay."),
}


@dataclass(frozen=True)
class Moment:
    """A moment as the pages show it: in the app's time zone, the page language's way."""

    text: str
    iso: str


def moment(value: dt.datetime | None) -> Moment | None:
    """``value`` in the app's time zone (``None`` stays ``None``)."""
    if value is None:
        return None
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return Moment(format_local_datetime(value, tz), value.astimezone(tz).isoformat())


def channel_name(channel: str) -> str:
    """A channel (or an endpoint's kind) in words."""
    return str(CHANNEL_NAMES.get(channel, channel))


def type_name(type_: str) -> str:
    """A message type in words."""
    return str(MESSAGE_TYPES.get(type_, type_))


def refusal_text(exc: Conflict, status: str) -> str:
    """A replay refusal in the page's language."""
    if exc.code == "not_finished":
        label = STATUSES.get(status, (status, ""))[0]
        return gettext("This delivery is still on its way (%(status)s): it can be replayed once it is finished.", status=label)
    return str(REFUSALS.get(exc.code, exc.message))


def current_user_object() -> User:
    """The signed-in user (not the proxy)."""
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


class EditorCheck:
    """Whether the user holds the editor role in an organization, asked once per organization."""

    def __init__(self, user: User) -> None:
        self.user = user
        self._known: dict[int, bool] = {}

    def __call__(self, org_id: int | None) -> bool:
        """Whether the user may change things of ``org_id``."""
        if org_id is None:
            return False
        if org_id not in self._known:
            self._known[org_id] = can(self.user, org_id, Role.EDITOR)
        return self._known[org_id]


def log_rows(entries: list[LogEntry], user: User, back: dict[str, str]) -> list[dict[str, Any]]:
    """What the log's table shows of each entry; ``replay_url`` only where the user may replay it
    (editor of its owner) and the operation would take it now. ``back``: the filters to return to."""
    editor = EditorCheck(user)
    at = now()
    rows = []
    for entry in entries:
        delivery = entry.delivery
        replayable = editor(entry.owner_org_id) and operations.replay_refusal(
            delivery, endpoint_enabled=entry.endpoint_enabled, at=at) is None
        label, mark = STATUSES.get(delivery.status, (delivery.status, "?"))
        rows.append({
            "id": delivery.id, "status": delivery.status, "status_label": label, "status_mark": mark,
            "type": type_name(delivery.type), "channel": channel_name(delivery.channel), "recipient": entry.recipient,
            "event_id": delivery.event_id, "event_title": entry.event_title,
            "created": moment(delivery.created_at), "due": moment(entry.reminder.scheduled_at) if entry.reminder else None,
            "attempts": delivery.attempts, "last_error": delivery.last_error, "status_code": delivery.last_status_code,
            "next_attempt": moment(delivery.next_attempt_at) if delivery.status in WAITING else None,
            "sent": moment(delivery.sent_at),
            "replay_url": (with_query(url_for("pages.organizer_delivery_replay", delivery_id=delivery.id), back)
                           if replayable else None),
        })
    return rows


def with_query(path: str, args: dict[str, str]) -> str:
    """``path`` with ``args`` as its query string (``url_for`` cannot take a parameter called ``endpoint``)."""
    return f"{path}?{urlencode(args)}" if args else path


def log_url(args: dict[str, str]) -> str:
    """The log's address with these filters (and page)."""
    return with_query(url_for("pages.organizer_deliveries"), args)


def _filter_values() -> dict[str, str]:
    return {key: request.args.get(key, "").strip() for key in FILTERS if request.args.get(key, "").strip()}


def _page_number() -> int | None:
    text = request.args.get("page", "1")
    return int(text) if text.isdigit() and 1 <= int(text) <= 100_000 else None


@bp.get("/organizer/deliveries")
@login_required
def organizer_deliveries() -> tuple[str, int]:
    """The delivery log of the user's organizations, newest first, 50 a page, with the API's filters."""
    user = current_user_object()
    values = _filter_values()
    page = _page_number()
    status, problem = 200, None
    entries: list[LogEntry] = []
    total = 0
    try:
        query = DeliveryQuery.model_validate({**values, "page": page or 1, "per_page": PER_PAGE})
    except ValidationError:
        query = None
    if query is None or page is None:
        status, problem = 400, gettext("Some filters are not valid; no deliveries are shown.")
    else:
        entries, total = delivery_log(readable_org_ids(user), query)
    current = page or 1
    pages = max(1, -(-total // PER_PAGE))
    back = {**values, **({"page": str(current)} if current > 1 else {})}
    endpoints = [(str(e.id), f"#{e.id} {display_url(e.kind, e.url)}") for e in visible_endpoints(user)]
    return render_template(
        "organizer_deliveries.html", rows=log_rows(entries, user, back), total=total, values=values, problem=problem,
        page=current, pages=pages, statuses=[(key.value, label) for key, (label, _) in STATUSES.items()],
        channels=[(name, channel_name(name)) for name in CHANNELS], types=list(MESSAGE_TYPES.items()), endpoints=endpoints,
        previous_url=log_url({**values, "page": str(current - 1)}) if current > 1 else None,
        next_url=log_url({**values, "page": str(current + 1)}) if current < pages else None,
    ), status


@bp.post("/organizer/deliveries/<delivery_id>/replay")
@login_required
def organizer_delivery_replay(delivery_id: str) -> Response:
    """Send a finished delivery again (same id, fresh retries), then back to the log with its filters."""
    user = current_user_object()
    found = visible_delivery(delivery_id, user)
    if found is None:
        abort(404)
    delivery, owner = found
    if not can(user, owner, Role.EDITOR):
        abort(403)
    try:
        operations.replay_delivery(delivery)
    except Conflict as exc:
        reason = refusal_text(exc, delivery.status)
        db.session.rollback()
        flash(reason, "error")
    else:
        db.session.commit()
        flash(gettext("The delivery is queued to be sent again."))
    back = {key: request.args[key] for key in (*FILTERS, "page") if request.args.get(key)}
    return redirect(log_url(back), code=303)
