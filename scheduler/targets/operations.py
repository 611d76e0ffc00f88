"""Changes to targets (flush, never commit)."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.targets.defaults import CITY_TARGETS, TargetSpec
from scheduler.targets.models import Target


def set_target(year: int, spec: TargetSpec, org: Organization | None = None, value: int | None = None) -> Target:
    """Create or update the target ``spec.key`` of ``year`` for the city or ``org``."""
    org_id = org.id if org else None
    target = db.session.scalar(select(Target).where(Target.year == year, Target.org_id == org_id, Target.key == spec.key))
    if target is None:
        target = Target(year=year, org_id=org_id, key=spec.key, manual_value=0)
        db.session.add(target)
    target.label_zh, target.label_en, target.metric = spec.label_zh, spec.label_en, spec.metric.value
    target.kinds, target.outcome_field = list(spec.kinds), spec.outcome_field
    target.unit_zh, target.unit_en = spec.unit_zh, spec.unit_en
    target.target_value = spec.target_value if value is None else value
    db.session.flush()
    return target


def seed_city_targets(year: int) -> list[Target]:
    """Store the work plan's city-wide targets (DOMAIN.md) for ``year``."""
    return [set_target(year, spec) for spec in CITY_TARGETS]
