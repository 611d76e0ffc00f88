"""Recording to the audit log (flush, never commit: the entry is committed with the action)."""
from __future__ import annotations

from typing import Any

from flask import g, has_request_context, request

from scheduler.audit.models import AuditEntry
from scheduler.auth.models import User
from scheduler.extensions import db
from scheduler.util.time import now


def _acting_user() -> User | None:
    """The API's bearer-token user, else the signed-in organizer, else ``None``."""
    if not has_request_context():
        return None
    user = g.get("api_user")
    if user is not None:
        return user
    from flask_login import current_user

    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user._get_current_object()  # type: ignore[attr-defined, no-any-return]
    return None


def record(action: str, subject: str = "", *, org_id: int | None = None, detail: dict[str, Any] | None = None,
           user: User | None = None, actor: str | None = None) -> AuditEntry:
    """Add an entry: ``action`` (``registrations.read``, ``registration.erase``, ...) on ``subject``
    (``event:12``), by ``user`` (default: whoever the request is authenticated as), from the
    request's address. ``actor`` names an actor without an account (``participant``, ``system``).
    ``detail`` must never hold a full phone number: mask it or count."""
    user = user if user is not None else _acting_user()
    entry = AuditEntry(
        at=now(), user_id=user.id if user else None, actor=actor or (user.email if user else "system"),
        action=action, subject=subject[:200], org_id=org_id, detail=detail or {},
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
