"""Alerts for the organizations you belong to."""
from __future__ import annotations

from scheduler.alerts.queries import alerts_page
from scheduler.api import api_user, bp, endpoint
from scheduler.api.schemas import PageQuery
from scheduler.auth.permissions import readable_org_ids, require_user
from scheduler.channels.schemas import AlertOut, AlertPage


@endpoint(bp, "/alerts", summary="Alerts for your organizations", tag="alerts", query=PageQuery, response=AlertPage)
def list_alerts(query: PageQuery) -> AlertPage:
    """Newest first: disabled webhook endpoints and other things a person should look at."""
    rows, total = alerts_page(readable_org_ids(require_user(api_user())), query.page, query.per_page)
    items = [
        AlertOut(id=a.id, org=org.slug, kind=a.kind, message=a.message, subject=a.subject, created_at=a.created_at)
        for a, org in rows
    ]
    return AlertPage(items=items, page=query.page, per_page=query.per_page, total=total)
