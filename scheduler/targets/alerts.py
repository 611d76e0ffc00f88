"""Alerts for targets falling behind their pace (the engine checks every morning)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from scheduler.alerts.models import Alert
from scheduler.alerts.operations import raise_alert
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.targets.models import Target
from scheduler.targets.progress import compute_progress


def alert_behind_pace(at: dt.datetime, tz: ZoneInfo) -> int:
    """Raise an alert (at most one a week per target) for every target of this year behind its
    steady pace whose plan (held and scheduled events) does not make up for it; returns how many.

    An organization's own targets alert it; the city-wide ones alert the top organizations.
    """
    year = at.astimezone(tz).year
    week = at.astimezone(tz).strftime("%G-W%V")
    owners = set(db.session.scalars(select(Target.org_id).where(Target.year == year)).all())
    raised = 0
    for owner_id in owners:
        org = db.session.get(Organization, owner_id) if owner_id is not None else None
        told = [org.id] if org else list(db.session.scalars(select(Organization.id).where(Organization.parent_id.is_(None))))
        for progress in compute_progress(year, org, at, tz):
            if progress.on_track or progress.plan_covers_target:
                continue
            subject = f"target:{progress.target.id}:{week}"
            for org_id in told:
                if db.session.scalar(select(Alert.id).where(Alert.org_id == org_id, Alert.subject == subject)) is not None:
                    continue
                raise_alert(
                    org_id, "target.behind",
                    f"{progress.target.label_zh}：已完成 {progress.achieved}，按进度应达 {int(progress.expected_by_now)}，"
                    f"已排期 {progress.scheduled}，目标 {progress.target.target_value}。"
                    f" Behind pace: {progress.achieved} done, {int(progress.expected_by_now)} expected by now,"
                    f" {progress.scheduled} scheduled, target {progress.target.target_value}.",
                    subject=subject,
                )
                raised += 1
    return raised
