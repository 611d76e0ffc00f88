"""API schemas of registrations."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from scheduler.api.schemas import Body, CsvList, Out, Page, PageQuery, Visible
from scheduler.feeds.links import CalendarLinks
from scheduler.registrations.models import Channel, RegistrationStatus


class RegistrationCreate(Body):
    """A participant's registration. The phone number is read as mainland Chinese without a country code."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Visible]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
    channels: Annotated[list[Channel], Field(max_length=1)] | None = Field(
        None, description="Reminder channels the participant asked for (``sms``); none when absent.")
    consent: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = Field(
        None, description="The version of the privacy notice (GET /api/v1/privacy) the participant agreed to; required.")
    verification_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=26)] | None = Field(
        None, description="POST /api/v1/verifications's id: required with the code when numbers are verified.")
    code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=12)] | None = Field(
        None, description="The 6-digit code texted to the number.")


class RegistrationCreated(Out):
    """The result of registering: the private token is shown this once."""

    id: int
    event_id: int
    status: RegistrationStatus
    token: str = Field(description="Private: cancels the registration, opens its calendar, its data and its erasure.")
    waitlist_position: int | None
    calendar: CalendarLinks | None = Field(None, description="This registration's own calendar (null once revoked).")
    manage_url: str = Field(description="Private: the registration's page (texts, calendar, data, erasure).")
    phone_verified: bool = Field(description="Whether the number was proved by a code.")


class RegistrationOut(Out):
    """A registration as its organizer sees it (phone masked for viewers)."""

    id: int
    event_id: int
    #: ``null`` once anonymized (retention or erasure).
    name: str | None
    phone: str | None
    channels: list[str]
    status: RegistrationStatus
    created_at: dt.datetime
    seated_at: dt.datetime | None
    #: When a seat freed on the waitlist went to it (``null``: seated at once, or not seated).
    promoted_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    checked_in_at: dt.datetime | None
    consent_version: str | None
    consented_at: dt.datetime | None
    phone_verified_at: dt.datetime | None
    anonymized_at: dt.datetime | None


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


