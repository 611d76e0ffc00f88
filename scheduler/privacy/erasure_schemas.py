"""API schemas of erasure on request."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from scheduler.api.schemas import Body, Out
from scheduler.privacy.erasure import MAX_NOTE
from scheduler.registrations.models import RegistrationStatus


class ErasureRequest(Body):
    """A person's request to erase their data, by phone number (read as mainland Chinese without a country code)."""

    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    confirm: bool = Field(False, description="false: only show what matches; true: erase it.")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NOTE)] = Field(
        "", description="The request's reference (e.g. 申请编号), kept in the audit log.")


class ErasureMatch(Out):
    """A registration with the number, in an organization you manage."""

    registration_id: int
    event_id: int
    event_title: str
    org: str = Field(description="The event's organization (slug).")
    status: RegistrationStatus
    created_at: dt.datetime


class ErasureOut(Out):
    """What matches the number (and, once confirmed, what was erased)."""

    phone: str = Field(description="The number, masked.")
    matches: list[ErasureMatch] = Field(description="The registrations found (erased ones too, when confirmed).")
    erased: int = Field(description="Registrations erased (0 without confirm).")
    promoted: int = Field(description="Waitlisted people who got a seat freed by the erasure.")
