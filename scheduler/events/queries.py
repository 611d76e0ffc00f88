"""Reading events: the filtered, paginated list and single lookups."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select, false, func, or_, select

from scheduler.api.errors import Invalid, NotFound
from scheduler.auth.models import User
from scheduler.auth.permissions import readable_org_ids
from scheduler.events.models import Event, Status
from scheduler.events.schemas import EventListQuery
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import county_org_ids, subtree_ids
from scheduler.util.time import UTC


#: Events spanning more than this (long series) are found by span, not by the start bound.
LONG_SPAN_SECONDS = 31 * 24 * 3600


def visible(stmt: Select, user: User | None) -> Select:
    """Restrict ``stmt`` to events ``user`` may see: all but drafts, plus drafts of their organizations."""
    readable = readable_org_ids(user)
    if readable is None:
        return stmt
    drafts_ok = Event.org_id.in_(readable) if readable else false()
    return stmt.where(or_(Event.status != Status.DRAFT.value, drafts_ok))


def get_visible_event(event_id: int, user: User | None) -> Event:
    """Return the event, or raise 404 when it does not exist or is a draft the user may not see."""
    event = db.session.scalar(visible(select(Event).where(Event.id == event_id), user))
    if event is None:
        raise NotFound("No such event.")
    return event


def _as_bound(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC)
    return dt.datetime.combine(value, dt.time(0), tzinfo=tz).astimezone(UTC)


def _month_bounds(month: str, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    year, mon = int(month[:4]), int(month[5:])
    first = dt.date(year, mon, 1)
    following = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return _as_bound(first, tz), _as_bound(following, tz)


def _org_ids(slugs: list[str]) -> set[int]:
    rows = [(slug, org_id) for slug, org_id in db.session.execute(select(Organization.slug, Organization.id).where(Organization.slug.in_(slugs)))]
    unknown = set(slugs) - {slug for slug, _ in rows}
    if unknown:
        raise Invalid(fields={"org": f"Unknown organization: {', '.join(sorted(unknown))}."})
    return subtree_ids({org_id for _, org_id in rows})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(query: EventListQuery, user: User | None) -> Select:
    """The ``SELECT`` of events matching the list filters, in time order."""
    from scheduler.orgs.counties import COUNTIES

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    stmt = visible(select(Event), user)
    if query.kind:
        stmt = stmt.where(Event.kind.in_([k.value for k in query.kind]))
    if query.status:
        stmt = stmt.where(Event.status.in_([s.value for s in query.status]))
    if query.org:
        stmt = stmt.where(Event.org_id.in_(_org_ids(query.org)))
    if query.county:
        unknown = set(query.county) - COUNTIES.keys()
        if unknown:
            raise Invalid(fields={"county": f"Unknown county: {', '.join(sorted(unknown))}."})
        stmt = stmt.where(Event.org_id.in_(set().union(*(county_org_ids(c) for c in query.county))))
    start = _as_bound(query.from_, tz) if query.from_ else None
    end = _as_bound(query.to, tz) if query.to else None
    if query.month:
        month_start, month_end = _month_bounds(query.month, tz)
        start = max(start, month_start) if start else month_start
        end = min(end, month_end) if end else month_end
    if start is not None and end is not None and end <= start:
        raise Invalid(fields={"to": "The end of the range must come after its start."})
    if end is not None:
        stmt = stmt.where(Event.starts_at < end)
    if start is not None:
        # Overlap with the range; no event spans more than the longest one stored, so
        # bounding the start too keeps the scan on the (kind|org|status, starts_at) index short.
        longest = db.session.scalar(select(func.max(Event.span_seconds))) or 0
        stmt = stmt.where(Event.last_ends_at > start)
        if longest <= LONG_SPAN_SECONDS:
            stmt = stmt.where(Event.starts_at >= start - dt.timedelta(seconds=longest))
        else:
            # A few long series must not widen the scan of every other event: bound the
            # start by LONG_SPAN and fetch the longer events through ix_events_span_seconds.
            stmt = stmt.where(
                or_(Event.starts_at >= start - dt.timedelta(seconds=LONG_SPAN_SECONDS), Event.span_seconds > LONG_SPAN_SECONDS)
            )
    if query.q:
        pattern = f"%{_escape_like(query.q)}%"
        stmt = stmt.where(
            or_(
                Event.title.ilike(pattern, escape="\\"),
                Event.description.ilike(pattern, escape="\\"),
                Event.venue.ilike(pattern, escape="\\"),
            )
        )
    return stmt.order_by(Event.starts_at, Event.id)


def list_events(query: EventListQuery, user: User | None) -> tuple[list[Event], int]:
    """Return one page of matching events and the number of all matches."""
    stmt = filtered(query, user)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(db.session.scalars(stmt.offset((query.page - 1) * query.per_page).limit(query.per_page)).unique())
    return items, total
