"""Target model."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime


class Metric(StrEnum):
    """How progress toward a target is measured."""

    #: Number of events (occurrences) of the target's kinds held in the year.
    COUNT_EVENTS = "count_events"
    #: Sum of one outcome field over the events of the target's kinds held in the year.
    SUM_OUTCOME = "sum_outcome"
    #: Not derived from events (new science bases, R&D projects): recorded by hand.
    MANUAL = "manual"


class Target(db.Model):
    """One goal of one year, for the whole city or for one organization and those below it."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("year", "org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    #: ``None`` for a city-wide target.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    #: Stable key such as ``popularization_events``.
    key: Mapped[str] = mapped_column(String(64))
    label_zh: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(32))
    #: Event kinds counted or summed over (empty for manual targets).
    kinds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: Outcome field summed by ``sum_outcome`` targets.
    outcome_field: Mapped[str | None] = mapped_column(String(64))
    target_value: Mapped[int] = mapped_column(Integer)
    #: Progress recorded by hand for ``manual`` targets.
    manual_value: Mapped[int] = mapped_column(Integer, default=0)
    unit_zh: Mapped[str] = mapped_column(String(16), default="场")
    unit_en: Mapped[str] = mapped_column(String(16), default="events")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)

    org: Mapped[Organization | None] = relationship()
