"""Public pages: an event's page (the URL calendar entries point to)."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template

from scheduler.api.errors import NotFound
from scheduler.events.kinds import KINDS, Kind
from scheduler.events.presenters import present_event
from scheduler.events.queries import get_visible_event
from scheduler.feeds.links import subscribe_links
from scheduler.i18n import format_local_datetime
from scheduler.util.urls import absolute_url

bp = Blueprint("pages", __name__)


@bp.get("/events/<int:event_id>")
def event_page(event_id: int) -> str:
    """An event's page: time, place, organizer, seats, and how to add it to a calendar."""
    try:
        event = get_visible_event(event_id, None)
    except NotFound:
        abort(404)
    tz = ZoneInfo(event.timezone)
    return render_template(
        "event.html",
        event=present_event(event),
        kind=KINDS[Kind(event.kind)],
        starts=format_local_datetime(event.starts_at, tz),
        ends=format_local_datetime(event.ends_at, tz),
        starts_iso=event.starts_at.astimezone(tz).isoformat(),
        ends_iso=event.ends_at.astimezone(tz).isoformat(),
        ics=subscribe_links(absolute_url("feeds.single_event", event_id=event.id)),
    )
