"""Reading events: the filtered, paginated list and single lookups."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select, false, func, or_, select, union_all
from sqlalchemy.orm import aliased

from scheduler.api.errors import Invalid, NotFound
from scheduler.auth.models import User
from scheduler.auth.permissions import readable_org_ids
from scheduler.events.models import Event, Status
from scheduler.events.schemas import EventListQuery
from scheduler.events.times import MAX_SPAN
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import county_org_ids, subtree_ids
from scheduler.util.time import UTC


#: Events longer than this (long series) are listed through the span index, apart from the rest.
LONG_SPAN = dt.timedelta(days=31)


def visible(stmt: Select, user: User | None) -> Select:
    """Restrict ``stmt`` to events ``user`` may see: all but drafts, plus drafts of their organizations."""
    readable = readable_org_ids(user)
    if readable is None:
        return stmt
    drafts_ok = Event.org_id.in_(readable) if readable else false()
    return stmt.where(or_(Event.status != Status.DRAFT.value, drafts_ok))


#: The largest id a row can have (PostgreSQL ``integer``): a larger one in a URL is simply not found.
MAX_ID = 2**31 - 1


def get_visible_event(event_id: int, user: User | None) -> Event:
    """Return the event, or raise 404 when it does not exist or is a draft the user may not see."""
    if not 0 < event_id <= MAX_ID:  # the database would refuse to compare the id
        raise NotFound("No such event.")
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
    if query.q:
        pattern = f"%{_escape_like(query.q)}%"
        stmt = stmt.where(
            or_(
                Event.title.ilike(pattern, escape="\\"),
                Event.description.ilike(pattern, escape="\\"),
                Event.venue.ilike(pattern, escape="\\"),
            )
        )
    if start is not None:
        return _overlapping(stmt.where(Event.last_ends_at > start), start, end)
    return stmt.order_by(Event.starts_at, Event.id)


def _overlapping(stmt: Select, start: dt.datetime, end: dt.datetime | None) -> Select:
    """Order ``stmt`` (already limited to events ending after ``start``) with a short index scan.

    An event overlapping the range started at most its span before ``start``; bounding
    the start keeps the scan on the (kind|org|status, starts_at) indexes short. The few
    events longer than :data:`LONG_SPAN` (long series) would widen that bound for every
    query, so they are looked up apart, through the ``span_seconds`` index, and merged in.
    """
    longest = dt.timedelta(seconds=db.session.scalar(select(func.max(Event.span_seconds))) or 0)
    if longest <= LONG_SPAN:
        return stmt.where(Event.starts_at >= start - longest).order_by(Event.starts_at, Event.id)
    # A two-sided range on span_seconds, and nothing a kind/org index could serve, so
    # every planner takes the span index (SQLite would otherwise walk ix_events_kind_starts).
    spans = Event.span_seconds.between(int(LONG_SPAN.total_seconds()) + 1, int(MAX_SPAN.total_seconds()))
    long_ids = list(db.session.scalars(
        select(Event.id).where(spans, Event.last_ends_at > start, *([Event.starts_at < end] if end is not None else []))
    ))
    short = stmt.where(Event.starts_at >= start - LONG_SPAN)
    if not long_ids:
        return short.order_by(Event.starts_at, Event.id)
    both = union_all(short.where(Event.id.not_in(long_ids)), stmt.where(Event.id.in_(long_ids))).subquery()
    merged = aliased(Event, both)
    return select(merged).order_by(merged.starts_at, merged.id)


def list_events(query: EventListQuery, user: User | None) -> tuple[list[Event], int]:
    """Return one page of matching events and the number of all matches."""
    stmt = filtered(query, user)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(db.session.scalars(stmt.offset((query.page - 1) * query.per_page).limit(query.per_page)).unique())
    return items, total
