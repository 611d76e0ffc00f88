"""Progress toward the targets, and recording the ones counted by hand."""
from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from flask import current_app
from pydantic import Field
from sqlalchemy import select

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import Forbidden, Invalid, NotFound
from scheduler.api.schemas import Body, Out, Query
from scheduler.auth.permissions import require_user
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug
from scheduler.targets.models import Target
from scheduler.targets.operations import MAX_MANUAL, may_record, record_manual_progress
from scheduler.targets.progress import Progress, compute_progress
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


class ManualProgressBody(Body):
    """What a target counted by hand (bases, projects…) has achieved so far."""

    achieved: Annotated[int, Field(ge=0, le=MAX_MANUAL)]
    org: Annotated[str, Field(max_length=64)] | None = Field(None, description="Whose target; none: the city's.")


def _org(slug: str | None) -> Organization | None:
    if not slug:
        return None
    org = get_org_by_slug(slug)
    if org is None:
        raise Invalid(fields={"org": f"Unknown organization {slug!r}."})
    return org


def present_progress(p: Progress) -> TargetProgress:
    """One target's progress as the API shows it."""
    return TargetProgress(
        key=p.target.key, label=p.target.label_zh, label_zh=p.target.label_zh, label_en=p.target.label_en,
        metric=p.target.metric, unit_zh=p.target.unit_zh, unit_en=p.target.unit_en,
        target=p.target.target_value, achieved=p.achieved, scheduled=p.scheduled, remaining=p.remaining,
        expected_by_now=round(p.expected_by_now, 2), on_track=p.on_track, plan_covers_target=p.plan_covers_target,
        scope=p.target.org.slug if p.target.org else "city", counted_for=p.counted_for,
    )


@endpoint(bp, "/progress", summary="Progress toward the year's targets", tag="targets", query=ProgressQuery, response=ProgressOut, auth="none")
def get_progress(query: ProgressQuery) -> ProgressOut:
    """Achieved counts events that have taken place (and outcomes recorded); scheduled counts published events still ahead."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    at = now()
    year = query.year or at.astimezone(tz).year
    org = _org(query.org)
    items = [present_progress(p) for p in compute_progress(year, org, at, tz)]
    return ProgressOut(year=year, org=query.org, as_of=at.isoformat(), targets=items)


@endpoint(bp, "/targets/<int:year>/<key>", "PUT", summary="Record a target counted by hand", tag="targets",
          body=ManualProgressBody, response=TargetProgress, errors=(409,))
def put_manual_progress(year: int, key: str, body: ManualProgressBody) -> TargetProgress:
    """Managers of the target's organization (for the city's targets: of the bureau) record what a
    ``manual`` target has achieved; the others count events and their outcomes (409)."""
    user = require_user(api_user())
    org = _org(body.org)
    target = db.session.scalar(select(Target).where(
        Target.year == year, Target.key == key, Target.org_id == (org.id if org else None)))
    if target is None:
        raise NotFound("No such target.")
    if not may_record(user, target):
        raise Forbidden("Only managers of the target's organization record its progress.")
    record_manual_progress(target, body.achieved)
    db.session.commit()
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return present_progress(next(p for p in compute_progress(year, org, now(), tz) if p.target.id == target.id))
