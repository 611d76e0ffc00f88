"""Reading alerts: one query for the API (``GET /api/v1/alerts``) and the organizers' pages."""
from __future__ import annotations

from sqlalchemy import func, select

from scheduler.alerts.models import Alert
from scheduler.extensions import db
from scheduler.orgs.models import Organization


def alerts_page(readable: set[int] | None, page: int = 1, per_page: int = 20) -> tuple[list[tuple[Alert, Organization]], int]:
    """One page of the alerts of the organizations in ``readable`` (``None``: all), newest first, each
    with its organization; and how many there are in all."""
    stmt = select(Alert, Organization).join(Organization, Organization.id == Alert.org_id)
    if readable is not None:
        stmt = stmt.where(Alert.org_id.in_(readable))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.execute(
        stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return [(alert, org) for alert, org in rows], total
