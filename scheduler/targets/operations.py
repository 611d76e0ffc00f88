"""Changes to targets (flush, never commit)."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.api.errors import Conflict, Invalid
from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.targets.defaults import CITY_TARGETS, TargetSpec
from scheduler.targets.models import Metric, Target

#: The most a hand-recorded figure may be.
MAX_MANUAL = 10_000_000


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


def may_record(user: User | None, target: Target) -> bool:
    """Whether ``user`` may record a manual target's progress: a manager of its organization, or,
    for a city-wide target, a manager of a top organization (the bureau); administrators always."""
    if user is None:
        return False
    if user.is_admin:
        return True
    if target.org_id is not None:
        return can(user, target.org_id, Role.MANAGER)
    return any(m.org.parent_id is None and Role(m.role).rank >= Role.MANAGER.rank for m in user.memberships)


def record_manual_progress(target: Target, value: int) -> Target:
    """Set what a manual target (bases, projects…) has achieved so far; events count the others."""
    if target.metric != Metric.MANUAL:
        raise Conflict("This target counts events and their outcomes; it is not recorded by hand.", code="not_manual")
    if not 0 <= value <= MAX_MANUAL:
        raise Invalid(fields={"achieved": f"Give a whole number from 0 to {MAX_MANUAL}."})
    target.manual_value = value
    db.session.flush()
    return target
