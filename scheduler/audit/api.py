"""``GET /api/v1/audit``: the audit log, for administrators."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from scheduler.api import api_user, bp, endpoint
from scheduler.api.errors import Forbidden
from scheduler.api.schemas import Out, Page, PageQuery, within_supported_years
from scheduler.audit.queries import AuditFilter, audit_page
from scheduler.auth.permissions import require_user


#: A moment with its offset (a naive time would be read in no particular zone).
Moment = Annotated[AwareDatetime, AfterValidator(within_supported_years)]


class AuditQuery(PageQuery):
    """Filters of the audit log."""

    action: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = Field(
        "", description="An action (``registrations.export``), or a prefix ending in a dot (``endpoint.``).")
    user: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] = Field(
        "", description="The actor: a user's e-mail address, ``participant`` or ``system``.")
    since: Moment | None = Field(None, description="From this moment (ISO 8601 with an offset).")
    until: Moment | None = Field(None, description="Before this moment (ISO 8601 with an offset).")
    per_page: Annotated[int, Field(ge=1, le=200)] = 50


class AuditOut(Out):
    """One recorded action."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    org: str | None = Field(description="The organization's slug, if any.")
    ip: str | None
    detail: dict[str, Any]


class AuditPage(Page[AuditOut]):
    """One page of the audit log, newest first."""


@endpoint(bp, "/audit", summary="The audit log", tag="audit", query=AuditQuery, response=AuditPage, errors=(403,))
def list_audit(query: AuditQuery) -> AuditPage:
    """Administrators only: who read or exported personal data, erased it, or changed roles or
    endpoints; when, from which address. Numbers in it are masked."""
    user = require_user(api_user())
    if not user.is_admin:
        raise Forbidden("The audit log is for administrators.")
    rows, total = audit_page(AuditFilter(query.action, query.user, query.since, query.until), query.page, query.per_page)
    items = [AuditOut(id=e.id, at=e.at, actor=e.actor, action=e.action, subject=e.subject, org=org.slug if org else None,
                      ip=e.ip, detail=e.detail or {}) for e, org in rows]
    return AuditPage(items=items, page=query.page, per_page=query.per_page, total=total)
