"""Who may do what: roles inherited down the organization tree, admins everywhere."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.api.errors import Forbidden, Unauthorized
from scheduler.auth.models import Role, User
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import ancestor_ids, subtree_ids


def role_in(user: User | None, org_id: int) -> Role | None:
    """Return the strongest role ``user`` holds in ``org_id`` or any organization above it."""
    if user is None:
        return None
    if user.is_admin:
        return Role.MANAGER
    above = ancestor_ids(org_id)
    roles = [Role(m.role) for m in user.memberships if m.org_id in above]
    return max(roles, key=lambda r: r.rank, default=None)


def can(user: User | None, org_id: int, needed: Role) -> bool:
    """Whether ``user`` holds at least the ``needed`` role for ``org_id``."""
    role = role_in(user, org_id)
    return role is not None and role.rank >= needed.rank


def require_user(user: User | None) -> User:
    """Return ``user``, or raise 401 when the request carries no valid token."""
    if user is None:
        raise Unauthorized()
    return user


def require_role(user: User | None, org_id: int, needed: Role) -> User:
    """Raise 401 without a user and 403 unless the user holds ``needed`` for ``org_id``."""
    user = require_user(user)
    if not can(user, org_id, needed):
        raise Forbidden(f"this needs the {needed.value} role in the event's organization")
    return user


def readable_org_ids(user: User | None) -> set[int] | None:
    """Organizations whose unpublished events ``user`` may see; ``None`` means all (admins)."""
    if user is None:
        return set()
    if user.is_admin:
        return None
    return subtree_ids({m.org_id for m in user.memberships})


def readable_orgs(user: User | None) -> list[Organization]:
    """The organizations ``user`` may read (:func:`readable_org_ids`), by id."""
    readable = readable_org_ids(user)
    query = select(Organization).order_by(Organization.id)
    if readable is not None:
        query = query.where(Organization.id.in_(readable))
    return list(db.session.scalars(query))
