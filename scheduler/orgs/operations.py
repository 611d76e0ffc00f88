"""Changes to organizations (flush, never commit)."""
from __future__ import annotations

from scheduler.extensions import db
from scheduler.orgs.counties import COUNTIES
from scheduler.orgs.models import Organization, OrgType
from scheduler.orgs.queries import get_org_by_slug
from scheduler.util.text import clean_text


def upsert_org(
    slug: str,
    name_zh: str,
    name_en: str,
    type: OrgType,
    parent: Organization | None = None,
    county: str | None = None,
) -> Organization:
    """Create the organization ``slug`` or bring an existing one up to date (names on one line, without
    control or invisible formatting characters: :func:`scheduler.util.text.clean_text`)."""
    if county is not None and county not in COUNTIES:
        raise ValueError(f"unknown county {county!r}")
    org = get_org_by_slug(slug) or Organization(slug=slug)
    org.name_zh, org.name_en, org.type = clean_text(name_zh), clean_text(name_en), type.value
    org.parent, org.county = parent, county
    db.session.add(org)
    db.session.flush()
    return org
