"""Raising alerts (flush, never commit)."""
from __future__ import annotations

import logging

from scheduler.alerts.models import Alert
from scheduler.extensions import db
from scheduler.util.time import now

log = logging.getLogger(__name__)


def raise_alert(org_id: int, kind: str, message: str, subject: str = "") -> Alert:
    """Tell the managers of ``org_id`` about something: ``GET /api/v1/alerts``, and the organization's
    endpoints that take alerts (its group robot)."""
    from scheduler.reminders.dispatch import queue_alert  # the outbox builds on alerts' owners

    alert = Alert(org_id=org_id, kind=kind, message=message, subject=subject, created_at=now())
    db.session.add(alert)
    db.session.flush()
    queue_alert(org_id, kind, message)
    log.warning("alert for organization %s: %s (%s)", org_id, kind, subject)
    return alert
