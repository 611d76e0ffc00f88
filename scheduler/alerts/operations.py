"""Raising alerts (flush, never commit)."""
from __future__ import annotations

import logging

from scheduler.alerts.models import Alert
from scheduler.extensions import db
from scheduler.util.time import now

log = logging.getLogger(__name__)


def raise_alert(org_id: int, kind: str, message: str, subject: str = "") -> Alert:
    """Tell the managers of ``org_id`` about something (shown in ``GET /api/v1/alerts``)."""
    alert = Alert(org_id=org_id, kind=kind, message=message, subject=subject, created_at=now())
    db.session.add(alert)
    db.session.flush()
    log.warning("alert for organization %s: %s (%s)", org_id, kind, subject)
    return alert
