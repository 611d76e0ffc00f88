"""Progress endpoint."""
from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from flask import current_app
from pydantic import Field

from scheduler.api import bp, endpoint
from scheduler.api.errors import Invalid
from scheduler.api.schemas import Out, Query
from scheduler.orgs.queries import get_org_by_slug
from scheduler.targets.progress import compute_progress
from scheduler.util.time import now


class ProgressQuery(Query):
    """Which year, and optionally which organization."""

    year: Annotated[int, Field(ge=2000, le=2100)] | None = Field(None, description="Defaults to the current year.")
    org: Annotated[str, Field(max_length=64)] | None = None


class TargetProgress(Out):
    """Where one target stands."""

    key: str
    label: str
    label_zh: str
    label_en: str
    metric: str
    unit_zh: str
    unit_en: str
    target: int
    achieved: int
    scheduled: int
    remaining: int
    expected_by_now: float
    on_track: bool
    plan_covers_target: bool
    scope: str = Field(description="'city' or the organization's slug.")
    counted_for: str | None = Field(description="For city targets shown for one organization: its slug.")


class ProgressOut(Out):
    """Progress toward every target of a year."""

    year: int
    org: str | None
    as_of: str
    targets: list[TargetProgress]


@endpoint(bp, "/progress", summary="Progress toward the year's targets", tag="targets", query=ProgressQuery, response=ProgressOut, auth="none")
def get_progress(query: ProgressQuery) -> ProgressOut:
    """Achieved counts events that have taken place (and outcomes recorded); scheduled counts published events still ahead."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    at = now()
    year = query.year or at.astimezone(tz).year
    org = None
    if query.org:
        org = get_org_by_slug(query.org)
        if org is None:
            raise Invalid(fields={"org": f"Unknown organization {query.org!r}."})
    items = [
        TargetProgress(
            key=p.target.key, label=p.target.label_zh, label_zh=p.target.label_zh, label_en=p.target.label_en,
            metric=p.target.metric, unit_zh=p.target.unit_zh, unit_en=p.target.unit_en,
            target=p.target.target_value, achieved=p.achieved, scheduled=p.scheduled, remaining=p.remaining,
            expected_by_now=round(p.expected_by_now, 2), on_track=p.on_track, plan_covers_target=p.plan_covers_target,
            scope=p.target.org.slug if p.target.org else "city", counted_for=p.counted_for,
        )
        for p in compute_progress(year, org, at, tz)
    ]
    return ProgressOut(year=year, org=query.org, as_of=at.isoformat(), targets=items)
