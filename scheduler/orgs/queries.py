"""Reading the organization tree."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from scheduler.extensions import db
from scheduler.orgs.models import Organization


def get_org_by_slug(slug: str) -> Organization | None:
    """Return the organization with this slug, or ``None``."""
    return db.session.scalar(select(Organization).where(Organization.slug == slug))


def subtree_ids(org_ids: set[int] | list[int]) -> set[int]:
    """Return the ids of the given organizations and of everything below them."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for org_id, parent_id in db.session.execute(select(Organization.id, Organization.parent_id)):
        children[parent_id].append(org_id)
    found: set[int] = set()
    stack = list(org_ids)
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, ()))
    return found


def ancestor_ids(org_id: int) -> set[int]:
    """Return ``org_id`` and the ids of every organization above it."""
    parents: dict[int, int | None] = {row[0]: row[1] for row in db.session.execute(select(Organization.id, Organization.parent_id))}
    found: set[int] = set()
    current: int | None = org_id
    while current is not None and current not in found:
        found.add(current)
        current = parents.get(current)
    return found


def county_org_ids(county: str) -> set[int]:
    """Return the ids of the organizations located in ``county``."""
    return set(db.session.scalars(select(Organization.id).where(Organization.county == county)))


def org_ids_of(slugs: list[str], field: str = "orgs") -> list[int]:
    """The ids of the organizations ``slugs`` names (an unknown one is a 422 on ``field``)."""
    from scheduler.api.errors import Invalid

    found = dict(db.session.execute(select(Organization.slug, Organization.id).where(Organization.slug.in_(slugs))).all())
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        raise Invalid(fields={field: f"Unknown organization {unknown[0]!r}."})
    return [found[slug] for slug in slugs]
