"""What SMS needs to remember: each number's choices, and how many texts it got each day."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scheduler.extensions import db
from scheduler.util.time import now
from scheduler.util.types import UTCDateTime


class SmsChoice(db.Model):
    """One choice a number made about SMS (the latest one holds), known by the number's keyed
    hash only, so an opt-out outlives the registrations; retention keeps only each number's
    latest opt-out.

    Opting out by the link on a reminder's page, or by replying ``TD``/``T``/``R`` to a text,
    adds a row with ``opted_out`` true; opting back in (only by the person, on their page)
    adds one with it false.
    """

    __tablename__ = "sms_choices"
    __table_args__ = (Index("ix_sms_choices_phone_created", "phone_hash", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: :func:`scheduler.util.phone.phone_key` of the number (E.164).
    phone_hash: Mapped[str] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean)
    #: ``link`` (the person's page, after proving the number), ``reply`` (an answer to a text,
    #: through the provider) or ``erasure`` (the person erased their data and stays opted out).
    source: Mapped[str] = mapped_column(String(16))
    #: What was replied (``TD``), or which page.
    detail: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)


class SmsDailyCount(db.Model):
    """How many texts went to a number on one local day (the per-number daily cap), known by the
    number's keyed hash: counting needs no number."""

    __tablename__ = "sms_daily_counts"

    #: :func:`scheduler.util.phone.phone_key` of the number.
    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
