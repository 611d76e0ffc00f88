"""The audit log page (``/organizer/audit``): administrators only, filtered by action, actor and
day, 50 entries a page, newest first. The API's ``GET /api/v1/audit`` gives the same."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_login import current_user, login_required

from scheduler.api.schemas import SUPPORTED_YEARS
from scheduler.audit.queries import AuditFilter, audit_page
from scheduler.i18n import format_local_datetime
from scheduler.pages import NAV_CHECKS
from scheduler.pages.views import bp

PER_PAGE = 50
#: Control characters (tab and line breaks too: no filter needs them).
_CONTROL = re.compile("[\x00-\x1f\x7f]")
#: Each recorded action, as people read it.
ACTIONS = {
    "registrations.read": lazy_gettext("Registrations read with full numbers"),
    "registrations.export": lazy_gettext("Registrations exported (CSV)"),
    "registration.erase": lazy_gettext("A participant erased a registration"),
    "registrations.erase": lazy_gettext("Registrations erased on request"),
    "privacy.purge": lazy_gettext("Retention purge"),
    "user.create": lazy_gettext("User created"),
    "user.password": lazy_gettext("Password reset"),
    "membership.set": lazy_gettext("Role changed"),
    "endpoint.create": lazy_gettext("Endpoint created"),
    "endpoint.update": lazy_gettext("Endpoint changed"),
    "endpoint.enable": lazy_gettext("Endpoint enabled"),
    "endpoint.disable": lazy_gettext("Endpoint disabled"),
    "endpoint.rotate": lazy_gettext("Endpoint secret rotated"),
    "endpoint.delete": lazy_gettext("Endpoint deleted"),
    "endpoint.unsubscribe": lazy_gettext("Robot unsubscribed by its group"),
}


def _is_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_admin)


NAV_CHECKS["pages.organizer_audit"] = _is_admin


def _day(name: str, tz: ZoneInfo) -> dt.datetime | None:
    """The start of the local day a ``YYYY-MM-DD`` filter names (``None`` when absent, malformed, or
    outside the years the API accepts: day arithmetic near year 1 or 9999 would overflow)."""
    try:
        day = dt.date.fromisoformat(request.args.get(name, "").strip())
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz) if day.year in SUPPORTED_YEARS else None


def _text(name: str) -> str:
    """A text filter as typed, without control characters (PostgreSQL cannot compare NUL)."""
    return _CONTROL.sub("", request.args.get(name, "")).strip()[:254]


@bp.get("/organizer/audit")
@login_required
def organizer_audit() -> str:
    """Who read or exported personal data, erased it, or changed roles or endpoints."""
    if not _is_admin(current_user):
        abort(403)
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    values = {key: _text(key) for key in ("action", "actor", "from", "to")}
    until = _day("to", tz)
    wanted = AuditFilter(values["action"], values["actor"], _day("from", tz), until + dt.timedelta(days=1) if until else None)
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    rows, total = audit_page(wanted, page, PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    query = {key: value for key, value in values.items() if value}
    entries = [{
        "at": format_local_datetime(entry.at, tz), "at_iso": entry.at.astimezone(tz).isoformat(), "actor": entry.actor,
        "action": str(ACTIONS.get(entry.action, entry.action)), "subject": entry.subject, "org": org,
        "ip": entry.ip or "", "detail": ", ".join(f"{key}: {value}" for key, value in sorted((entry.detail or {}).items())),
    } for entry, org in rows]
    return render_template(
        "organizer_audit.html", entries=entries, values=values, total=total, page=page, pages=pages,
        actions=[(key, str(label)) for key, label in ACTIONS.items()],
        previous_url=url_for("pages.organizer_audit", **query, page=page - 1) if page > 1 else None,
        next_url=url_for("pages.organizer_audit", **query, page=page + 1) if page < pages else None,
    )
