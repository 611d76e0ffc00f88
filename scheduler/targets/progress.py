"""Progress toward the year's targets, computed from events and their recorded outcomes."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from scheduler.events.models import Event, EventOutcome, Status
from scheduler.events.times import occurrence_starts
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import subtree_ids
from scheduler.targets.models import Metric, Target
from scheduler.util.time import UTC

_COUNTED = (Status.PUBLISHED.value, Status.COMPLETED.value)


@dataclass
class Progress:
    """Where one target stands."""

    target: Target
    #: Events held (or outcome total recorded) so far.
    achieved: int
    #: Published events still ahead in the year (count targets only).
    scheduled: int
    #: What a steady pace would have reached by now.
    expected_by_now: float
    #: City-wide targets shown for one organization count only that organization's events.
    counted_for: str | None = None

    @property
    def remaining(self) -> int:
        """How much is still missing to reach the target."""
        return max(self.target.target_value - self.achieved, 0)

    @property
    def on_track(self) -> bool:
        """Achieved at least what a steady pace through the year would have by now."""
        return self.achieved >= math.floor(self.expected_by_now + 1e-9)

    @property
    def plan_covers_target(self) -> bool:
        """Held plus scheduled events reach the target."""
        return self.achieved + self.scheduled >= self.target.target_value


def year_bounds(year: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Start of ``year`` and of the next one, local midnight, in UTC."""
    return (
        dt.datetime(year, 1, 1, tzinfo=tz).astimezone(UTC),
        dt.datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC),
    )


def _occurrences(kinds: list[str], org_ids: set[int] | None, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> Iterator[tuple[dt.datetime, bool]]:
    """Each occurrence of the kinds in ``[start, end)``: (its start, whether it counts as held)."""
    stmt = select(Event.starts_at, Event.timezone, Event.rrule, Event.status).where(
        Event.kind.in_(kinds), Event.status.in_(_COUNTED), Event.starts_at < end, Event.last_ends_at > start
    )
    if org_ids is not None:
        stmt = stmt.where(Event.org_id.in_(org_ids))
    for starts_at, tz_name, rule, status in db.session.execute(stmt):
        for occurrence in occurrence_starts(starts_at, tz_name, rule):
            if start <= occurrence < end:
                yield occurrence, occurrence <= at or status == Status.COMPLETED


def _count(kinds: list[str], org_ids: set[int] | None, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> tuple[int, int]:
    """Occurrences of the kinds in the year: (held, still ahead)."""
    achieved = scheduled = 0
    for _occurrence, held in _occurrences(kinds, org_ids, start, end, at):
        if held:
            achieved += 1
        else:
            scheduled += 1
    return achieved, scheduled


def monthly_counts(kinds: list[str], year: int, org: Organization | None, at: dt.datetime, tz: ZoneInfo) -> list[tuple[int, int]]:
    """Occurrences of the kinds in each month of ``year`` (local time): 12 pairs (held, scheduled),
    counted as :func:`compute_progress` counts them (so they add up to its achieved and scheduled)."""
    start, end = year_bounds(year, tz)
    org_ids = subtree_ids({org.id}) if org else None
    months = [[0, 0] for _ in range(12)]
    for occurrence, held in _occurrences(kinds, org_ids, start, end, at):
        months[occurrence.astimezone(tz).month - 1][0 if held else 1] += 1
    return [(held, scheduled) for held, scheduled in months]


def _sum(kinds: list[str], field: str, org_ids: set[int] | None, start: dt.datetime, end: dt.datetime) -> int:
    """The total of one outcome field over the events of the kinds that started in the year."""
    column = getattr(EventOutcome, field)
    stmt = (
        select(func.coalesce(func.sum(column), 0))
        .join(Event, Event.id == EventOutcome.event_id)
        .where(Event.kind.in_(kinds), Event.status.in_(_COUNTED), Event.starts_at >= start, Event.starts_at < end)
    )
    if org_ids is not None:
        stmt = stmt.where(Event.org_id.in_(org_ids))
    return int(db.session.scalar(stmt) or 0)


def _measure(target: Target, org_ids: set[int] | None, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> tuple[int, int]:
    """Return (achieved, scheduled) for one target."""
    if target.metric == Metric.MANUAL:
        return target.manual_value, 0
    if target.metric == Metric.SUM_OUTCOME:
        return _sum(target.kinds, target.outcome_field or "", org_ids, start, end), 0
    return _count(target.kinds, org_ids, start, end, at)


def compute_progress(year: int, org: Organization | None, at: dt.datetime, tz: ZoneInfo) -> list[Progress]:
    """Progress of every target of ``year`` for the city (``org=None``) or one organization.

    For an organization without targets of its own, the city-wide targets are shown
    with that organization's (and its children's) contribution.
    """
    start, end = year_bounds(year, tz)
    fraction = min(max((at - start) / (end - start), 0.0), 1.0)
    org_ids = subtree_ids({org.id}) if org else None
    targets = list(db.session.scalars(select(Target).where(Target.year == year, Target.org_id == (org.id if org else None)).order_by(Target.id)))
    counted_for = None
    if org is not None and not targets:
        targets = list(db.session.scalars(select(Target).where(Target.year == year, Target.org_id.is_(None)).order_by(Target.id)))
        counted_for = org.slug
    result = []
    for target in targets:
        achieved, scheduled = _measure(target, org_ids, start, end, at)
        if counted_for and target.metric == Metric.MANUAL:
            achieved = 0  # hand-recorded city totals are not split by organization
        result.append(Progress(target, achieved, scheduled, target.target_value * fraction, counted_for))
    return result
