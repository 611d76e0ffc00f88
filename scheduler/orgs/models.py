"""Organization model."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


class OrgType(StrEnum):
    """What kind of body an organization is."""

    BUREAU = "bureau"
    COUNTY_OFFICE = "county_office"
    UNIVERSITY = "university"
    LAB = "lab"
    INSTITUTE = "institute"
    INCUBATOR = "incubator"
    OTHER = "other"


class Organization(db.Model):
    """An organizer: the city bureau at the top, everyone else below it."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Short stable key used in URLs and the API (``xinhui``, ``wyu``).
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32), default=OrgType.OTHER.value)
    #: The organization above this one; ``None`` for the bureau.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: County slug from :data:`scheduler.orgs.counties.COUNTIES`; ``None`` for city-wide bodies.
    county: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    #: Names appear in calendar feeds: a rename must refresh them.
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    parent: Mapped[Organization | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organization]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Organization {self.slug}>"
