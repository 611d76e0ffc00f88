"""Alerts for the organizations you belong to."""
from __future__ import annotations

from sqlalchemy import func, select

from scheduler.alerts.models import Alert
from scheduler.api import api_user, bp, endpoint
from scheduler.api.schemas import PageQuery
from scheduler.auth.permissions import readable_org_ids, require_user
from scheduler.channels.schemas import AlertOut, AlertPage
from scheduler.extensions import db
from scheduler.orgs.models import Organization


@endpoint(bp, "/alerts", summary="Alerts for your organizations", tag="alerts", query=PageQuery, response=AlertPage)
def list_alerts(query: PageQuery) -> AlertPage:
    """Newest first: disabled webhook endpoints and other things a person should look at."""
    readable = readable_org_ids(require_user(api_user()))
    stmt = select(Alert, Organization.slug).join(Organization, Organization.id == Alert.org_id)
    if readable is not None:
        stmt = stmt.where(Alert.org_id.in_(readable))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.execute(
        stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).offset((query.page - 1) * query.per_page).limit(query.per_page)
    ).all()
    items = [AlertOut(id=a.id, org=slug, kind=a.kind, message=a.message, subject=a.subject, created_at=a.created_at) for a, slug in rows]
    return AlertPage(items=items, page=query.page, per_page=query.per_page, total=total)
