"""Organization endpoints."""
from __future__ import annotations

from sqlalchemy import select

from scheduler.api import bp, endpoint
from scheduler.api.schemas import Out
from scheduler.extensions import db
from scheduler.orgs.counties import COUNTIES
from scheduler.orgs.models import Organization


class OrgOut(Out):
    """An organization."""

    slug: str
    name_zh: str
    name_en: str
    type: str
    parent: str | None
    county: str | None
    county_name_zh: str | None
    county_name_en: str | None


class OrgList(Out):
    """Every organization, parents before children."""

    items: list[OrgOut]


@endpoint(bp, "/orgs", summary="List organizations", tag="orgs", response=OrgList, auth="none")
def list_orgs() -> OrgList:
    """The bureau, county offices, universities, labs and institutes, with their parents and counties."""
    orgs = db.session.scalars(select(Organization).order_by(Organization.parent_id.is_not(None), Organization.id)).all()
    by_id = {o.id: o for o in orgs}
    return OrgList(
        items=[
            OrgOut(
                slug=o.slug, name_zh=o.name_zh, name_en=o.name_en, type=o.type,
                parent=by_id[o.parent_id].slug if o.parent_id else None,
                county=o.county,
                county_name_zh=COUNTIES[o.county][0] if o.county else None,
                county_name_en=COUNTIES[o.county][1] if o.county else None,
            )
            for o in orgs
        ]
    )
