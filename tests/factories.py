"""Factories: ``create_x(**overrides)`` builds a valid object with sensible defaults."""
from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from scheduler.auth.models import Role, User
from scheduler.auth.operations import create_token, create_user as _create_user, set_membership
from scheduler.events import operations as event_ops
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.models import Organization, OrgType
from scheduler.orgs.operations import upsert_org

_seq = itertools.count(1)
CST = dt.timezone(dt.timedelta(hours=8))


def create_org(slug: str | None = None, parent: Organization | None = None, county: str | None = None, **overrides: Any) -> Organization:
    """An organization (a county office below ``parent`` by default)."""
    n = next(_seq)
    slug = slug or f"org{n}"
    org = upsert_org(
        slug, overrides.get("name_zh", f"组织{n}"), overrides.get("name_en", f"Org {n}"),
        overrides.get("type", OrgType.COUNTY_OFFICE), parent, county,
    )
    db.session.commit()
    return org


def create_city(with_lab: bool = True) -> dict[str, Organization]:
    """A small tree: the bureau above the Xinhui and Kaiping offices (and a lab in Kaiping)."""
    bureau = create_org("bureau")
    city = {
        "bureau": bureau,
        "xinhui": create_org("xinhui", parent=bureau, county="xinhui"),
        "kaiping": create_org("kaiping", parent=bureau, county="kaiping"),
    }
    if with_lab:
        city["neutrino"] = create_org("neutrino-lab", parent=bureau, county="kaiping")
    return city


def create_user(role: Role | str | None = Role.EDITOR, org: Organization | None = None, *, admin: bool = False, email: str | None = None) -> User:
    """A user with ``role`` in ``org`` (or an administrator)."""
    user, _ = _create_user(email or f"user{next(_seq)}@example.org", "pw-" + "x" * 10, is_admin=admin)
    if org is not None and role is not None:
        set_membership(user, org, Role(role))
    db.session.commit()
    return user


def auth(user: User) -> dict[str, str]:
    """Headers carrying a fresh API token of ``user``."""
    _, clear = create_token(user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {clear}"}


def create_event(org: Organization, *, publish: bool = False, **overrides: Any) -> Event:
    """A study tour next week (by default) of ``org``; ``publish=True`` publishes it."""
    fields: dict[str, Any] = {
        "kind": "study_tour",
        "title": f"研学活动 {next(_seq)}",
        "starts_at": dt.datetime(2024, 6, 22, 9, 0, tzinfo=CST),
        "ends_at": dt.datetime(2024, 6, 22, 12, 0, tzinfo=CST),
        "details": {"meeting_point": "江门市科技馆北门"},
        "venue": "江门市科技馆",
    }
    fields.update(overrides)
    event = event_ops.create_event(org=org, **fields)
    if publish:
        event_ops.publish_event(event)
    db.session.commit()
    return event


def event_body(org: str, **overrides: Any) -> dict[str, Any]:
    """A valid JSON body for ``POST /api/v1/events``."""
    body: dict[str, Any] = {
        "kind": "study_tour",
        "title": "走进中微子实验室",
        "org": org,
        "starts_at": "2024-07-06T08:30:00+08:00",
        "ends_at": "2024-07-06T17:00:00+08:00",
        "venue": "江门中微子实验室",
        "capacity": 40,
        "details": {"meeting_point": "江门市科技馆北门", "age_min": 12, "age_max": 18},
    }
    body.update(overrides)
    return body
