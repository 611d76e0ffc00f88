"""Reading the audit log: filtered, newest first, a page at a time."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from scheduler.audit.models import AuditEntry
from scheduler.extensions import db
from scheduler.orgs.models import Organization


@dataclass(frozen=True)
class AuditFilter:
    """What to show: an action (``registrations.read``, or a prefix such as ``endpoint.``), an actor's
    e-mail address (or ``participant``, ``system``), and a period (``until`` excluded)."""

    action: str = ""
    actor: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def audit_page(wanted: AuditFilter, page: int, per_page: int) -> tuple[list[tuple[AuditEntry, Organization | None]], int]:
    """One page of entries (each with its organization) and how many match in all."""
    stmt = select(AuditEntry, Organization).outerjoin(Organization, AuditEntry.org_id == Organization.id)
    if wanted.action:
        stmt = stmt.where(AuditEntry.action.startswith(wanted.action, autoescape=True) if wanted.action.endswith(".")
                          else AuditEntry.action == wanted.action)
    if wanted.actor:
        stmt = stmt.where(AuditEntry.actor == wanted.actor.strip().lower())
    if wanted.since is not None:
        stmt = stmt.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(AuditEntry.at < wanted.until)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.execute(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return [(entry, org) for entry, org in rows], total
