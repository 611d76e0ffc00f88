"""Participants' privacy endpoints: the notice in force, codes that prove a number, and a
registration's data (download and erasure) by its private token."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from pydantic import Field

from scheduler.api import bp, endpoint
from scheduler.api.errors import APIError, NotFound
from scheduler.api.schemas import Body, Out
from scheduler.extensions import db, limiter
from scheduler.privacy import access, verification
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import Registration
from scheduler.registrations.operations import get_by_token
from scheduler.util.urls import absolute_url


def verification_limit() -> str:
    """Codes per client address (``RATELIMIT_VERIFICATION``), shared by the API and the pages."""
    return str(current_app.config["RATELIMIT_VERIFICATION"])


class PrivacyOut(Out):
    """The privacy notice in force."""

    version: str = Field(description="Send it as ``consent`` when registering.")
    url: str = Field(description="The notice, in Chinese and English.")
    verify_phone: bool = Field(description="Whether registering needs a code texted to the number.")


@endpoint(bp, "/privacy", summary="The privacy notice in force", tag="privacy", response=PrivacyOut, auth="none")
def privacy_notice() -> PrivacyOut:
    """Show the notice (purpose, who sees the data, how long it is kept) before registering."""
    return PrivacyOut(version=NOTICE_VERSION, url=absolute_url("pages.privacy"), verify_phone=verification.required_for_registration())


class VerificationCreate(Body):
    """A number to prove."""

    phone: str = Field(max_length=32)


class VerificationOut(Out):
    """A code was texted; give it with ``id`` (when registering: ``verification_id`` and ``code``)."""

    id: str
    expires_at: dt.datetime


class CodeNotSent(APIError):
    status, code = 503, "code_not_sent"
    message = "The code could not be texted now: try again in a minute."


@endpoint(bp, "/verifications", "POST", summary="Text a code that proves a number", tag="privacy",
          body=VerificationCreate, response=VerificationOut, status=201, auth="none", errors=(422, 429, 503))
@limiter.shared_limit(verification_limit, scope="verification")
def create_verification(body: VerificationCreate) -> VerificationOut:
    """A 6-digit code, valid 10 minutes for 5 tries; at most 1 a minute, 5 an hour and 10 a day per
    number, and ``RATELIMIT_VERIFICATION`` per address."""
    phone = verification.parse_phone(body.phone)
    row, code = verification.request_code(phone)
    db.session.commit()
    if not verification.send_code(row, phone, code):
        raise CodeNotSent()
    return VerificationOut(id=row.id, expires_at=row.expires_at)


def _registration(token: str) -> Registration:
    registration = get_by_token(token) if len(token) <= 100 else None
    if registration is None:
        raise NotFound("No such registration.")
    return registration


class DataOut(Out):
    """Everything kept about a registration."""

    registration: dict[str, Any]
    event: dict[str, Any]
    messages: list[dict[str, Any]]


@endpoint(bp, "/registrations/<token>/data", summary="Download a registration's data", tag="privacy", response=DataOut, auth="none")
def registration_data(token: str) -> DataOut:
    """By the registration's private token: the registration, its event and the messages sent about it."""
    return DataOut(**access.registration_data(_registration(token)))


class ErasedOut(Out):
    """The registration's personal data is gone."""

    erased: int
    promoted: int = Field(description="Waitlisted people who got the freed seat.")


@endpoint(bp, "/registrations/<token>/data", "DELETE", summary="Erase a registration's data", tag="privacy",
          response=ErasedOut, auth="none")
def erase_registration_data(token: str) -> ErasedOut:
    """Cancels the registration (its seat goes to the waitlist) and removes the name and number;
    the private token and links stop working."""
    promoted = access.erase_registration(_registration(token))
    db.session.commit()
    return ErasedOut(erased=1, promoted=promoted)
