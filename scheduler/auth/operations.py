"""Changes to users, memberships and tokens (flush, never commit)."""
from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from scheduler.audit.operations import record
from scheduler.auth import login_sessions
from scheduler.auth.models import ApiToken, Membership, Role, User
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.util.ids import hash_secret, new_secret
from scheduler.util.time import now

TOKEN_PREFIX = "sst_"


def get_user_by_email(email: str) -> User | None:
    """Return the user with this e-mail address (case-insensitive), or ``None``."""
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def hash_password(password: str) -> str:
    """The stored hash of ``password`` (``PASSWORD_HASH_METHOD``: scrypt unless configured)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def create_user(email: str, password: str | None = None, *, name: str = "", is_admin: bool = False) -> tuple[User, str]:
    """Create a user; return it and its password (generated when not given)."""
    if get_user_by_email(email):
        raise ValueError(f"a user {email} exists already")
    password = password or secrets.token_urlsafe(12)
    user = User(email=email.strip().lower(), name=name, is_admin=is_admin, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    record("user.create", f"user:{user.id}", detail={"email": user.email, "admin": is_admin})
    return user, password


def new_password() -> str:
    """A strong one-time password (128 random bits, URL-safe): to be changed by its owner."""
    return secrets.token_urlsafe(16)


def set_password(user: User, password: str, *, generated: bool = False, via: str = "") -> int:
    """Give ``user`` a new ``password`` and end every server-side session they have open; record it
    (``user.password``, actor ``system`` outside a request). Returns the number of sessions ended.
    The password itself goes nowhere but its hash."""
    if not password:
        raise ValueError("the password is empty")
    user.password_hash = hash_password(password)
    db.session.flush()
    ended = login_sessions.end_all(user)
    detail: dict[str, object] = {"email": user.email, "generated": generated, "sessions_ended": ended}
    if via:
        detail["via"] = via
    record("user.password", f"user:{user.id}", detail=detail)
    return ended


def set_membership(user: User, org: Organization, role: Role) -> Membership:
    """Give ``user`` the ``role`` in ``org`` (replacing any role held there)."""
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id, Membership.org_id == org.id))
    if membership is None:
        membership = Membership(user=user, org=org, role=role.value)
        db.session.add(membership)
    before = membership.role if membership.id else None
    membership.role = role.value
    db.session.flush()
    if before != role.value:
        record("membership.set", f"user:{user.id}", org_id=org.id, detail={"email": user.email, "role": role.value, "before": before})
    return membership


def create_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """Issue an API token for ``user``; the clear token is returned once and never stored."""
    clear = new_secret(TOKEN_PREFIX, 32)
    token = ApiToken(user=user, token_hash=hash_secret(clear), prefix=clear[:12], name=name)
    db.session.add(token)
    db.session.flush()
    return token, clear


def revoke_token(token: ApiToken) -> None:
    """Revoke a token; it stops working at once."""
    token.revoked_at = token.revoked_at or now()
    db.session.flush()


def user_for_token(clear: str) -> User | None:
    """Return the active user owning the unrevoked token ``clear``, or ``None``."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(clear)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    return token.user
