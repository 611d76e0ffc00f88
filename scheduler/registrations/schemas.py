"""API schemas of registrations."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from scheduler.api.schemas import Body, CsvList, Out, Page, PageQuery
from scheduler.feeds.links import CalendarLinks
from scheduler.registrations.models import Channel, RegistrationStatus


class RegistrationCreate(Body):
    """A participant's registration. The phone number is read as mainland Chinese without a country code."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    channels: Annotated[list[Channel], Field(max_length=2)] | None = Field(None, description="Reminder channels; SMS when absent.")


class RegistrationCreated(Out):
    """The result of registering: the private token is shown this once."""

    id: int
    event_id: int
    status: RegistrationStatus
    token: str = Field(description="Private: cancels the registration and opens the personal calendar.")
    waitlist_position: int | None
    calendar: CalendarLinks | None = Field(None, description="The participant's personal calendar (null once revoked).")


class RegistrationOut(Out):
    """A registration as its organizer sees it (phone masked for viewers)."""

    id: int
    event_id: int
    name: str
    phone: str
    email: str | None
    channels: list[str]
    status: RegistrationStatus
    created_at: dt.datetime
    seated_at: dt.datetime | None
    #: When a seat freed on the waitlist went to it (``null``: seated at once, or not seated).
    promoted_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    checked_in_at: dt.datetime | None


class RegistrationPage(Page[RegistrationOut]):
    """One page of registrations."""


class RegistrationCancelled(Out):
    """The result of a cancellation."""

    id: int
    status: RegistrationStatus
    promoted: int = Field(description="How many waitlisted people got a seat.")


class RegistrationListQuery(PageQuery):
    """Filters of an event's registrations."""

    status: CsvList[RegistrationStatus] | None = None
    per_page: Annotated[int, Field(ge=1, le=500)] = 100


