"""Registering, cancelling, promoting from the waitlist and checking in at the door (flush, never commit)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, func, or_, select

from scheduler.api.errors import Conflict, Invalid
from scheduler.channels.sms.rules import DOMESTIC_PROVIDERS, is_mainland_mobile
from scheduler.events.kinds import Kind
from scheduler.events.models import Event, Status
from scheduler.extensions import db
from scheduler.feeds.personal import issue_for_registration
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import Channel, Registration, RegistrationStatus
from scheduler.util.ids import hash_secret, new_secret
from scheduler.util.phone import InvalidPhone, normalize_phone, phone_key
from scheduler.util.time import now

#: Check-in at the door opens this long before the (first) start of the event.
CHECK_IN_OPENS_BEFORE = dt.timedelta(hours=24)
#: First come, first served: the waitlist's order (the id breaks ties of the same moment).
WAITLIST_ORDER = (Registration.created_at, Registration.id)


def registration_closes_at(event: Event) -> dt.datetime:
    """When registration closes: a contest's registration deadline, otherwise the start."""
    if event.kind == Kind.CONTEST and event.details.get("registration_deadline"):
        return dt.datetime.fromisoformat(event.details["registration_deadline"])
    return event.starts_at


def seat_counts(event_ids: list[int]) -> dict[int, dict[str, int]]:
    """Return ``{event_id: {"registered": n, "waitlisted": m}}`` for the given events."""
    counts: dict[int, dict[str, int]] = {i: {"registered": 0, "waitlisted": 0} for i in event_ids}
    if not event_ids:
        return counts
    rows = db.session.execute(
        select(Registration.event_id, Registration.status, func.count())
        .where(Registration.event_id.in_(event_ids), Registration.status != RegistrationStatus.CANCELLED.value)
        .group_by(Registration.event_id, Registration.status)
    )
    for event_id, status, count in rows:
        counts[event_id][status] = count
    return counts


def waitlist_position(registration: Registration) -> int | None:
    """Where a waitlisted registration stands (1: next to get a seat); ``None`` when it is not waiting."""
    if registration.status != RegistrationStatus.WAITLISTED:
        return None
    ahead = db.session.scalar(
        select(func.count()).where(
            Registration.event_id == registration.event_id,
            Registration.status == RegistrationStatus.WAITLISTED.value,
            or_(
                Registration.created_at < registration.created_at,
                and_(Registration.created_at == registration.created_at, Registration.id < registration.id),
            ),
        )
    ) or 0
    return ahead + 1


def waitlist_positions(event_id: int) -> dict[int, int]:
    """``{registration_id: position}`` of an event's whole waitlist (1: next to get a seat), in
    the order :func:`fill_free_seats` promotes and :func:`waitlist_position` counts."""
    ids = db.session.scalars(
        select(Registration.id).where(
            Registration.event_id == event_id, Registration.status == RegistrationStatus.WAITLISTED.value,
        ).order_by(*WAITLIST_ORDER)
    )
    return {registration_id: position for position, registration_id in enumerate(ids, start=1)}


def _lock_event(event: Event) -> None:
    """Serialise seat changes of one event (row lock on PostgreSQL; SQLite has one writer)."""
    db.session.execute(select(Event.id).where(Event.id == event.id).with_for_update())


def _seated(event: Event) -> int:
    return db.session.scalar(
        select(func.count()).where(Registration.event_id == event.id, Registration.status == RegistrationStatus.REGISTERED.value)
    ) or 0


def register(event: Event, *, name: str, phone: str, channels: list[str] | None = None, consent_version: str | None = None,
             verified: bool = False) -> tuple[Registration, str]:
    """Register a participant; returns the registration and its private token (shown once).

    Takes a seat while there is one, otherwise joins the waitlist. The participant must agree to
    the privacy notice in force (``consent_version``); no reminder channel is chosen unless asked
    for. ``verified``: the number was proved by a code just now. Raises 409 when registration is
    closed or the number is registered already, 422 for bad fields.
    """
    if event.status != Status.PUBLISHED:
        raise Conflict(f"Registration is not open: the event is {event.status}.", code="registration_closed")
    if now() >= registration_closes_at(event):
        raise Conflict("Registration has closed for this event.", code="registration_closed")
    problems: dict[str, str] = {}
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as exc:
        problems["phone"] = f"{exc.args[0].capitalize()}: give a mobile number such as 13800138000."
    if consent_version != NOTICE_VERSION:
        problems["consent"] = (f"Agree to the privacy notice (version {NOTICE_VERSION}, /privacy) to register."
                               if not consent_version else f"The privacy notice changed: read version {NOTICE_VERSION} (/privacy) and agree again.")
    if problems:
        raise Invalid(fields=problems)
    chosen = list(dict.fromkeys(Channel(c).value for c in (channels or [])))
    if Channel.SMS in chosen and current_app.config.get("SMS_PROVIDER") in DOMESTIC_PROVIDERS and not is_mainland_mobile(e164):
        raise Invalid(fields={"phone": "Text reminders go to mainland China mobile numbers only; choose another channel."})
    _lock_event(event)
    existing = db.session.scalar(select(Registration).where(Registration.event_id == event.id, Registration.phone == e164))
    if existing is not None and existing.status != RegistrationStatus.CANCELLED:
        if verified:  # the number's owner: they may know
            raise Conflict("This phone number is registered for the event already.", code="already_registered")
        # Unproved: say nothing about whether someone registered this number (see the README).
        raise Conflict("The registration could not be made. If you registered before, use the link on your "
                       "confirmation page or in our texts, or prove your number on /me.", code="not_registered")
    token = new_secret("r_", 24)
    registration = existing or Registration(event_id=event.id, phone=e164)
    registration.name, registration.channels, registration.phone_hash = name, chosen, phone_key(e164)
    registration.token_hash = hash_secret(token)
    moment = now()
    registration.created_at, registration.cancelled_at, registration.seated_at = moment, None, None
    registration.checked_in_at = registration.promoted_at = None  # registering again after cancelling starts afresh
    registration.consent_version, registration.consented_at = NOTICE_VERSION, moment
    registration.phone_verified_at = moment if verified else None
    has_seat = event.capacity is None or _seated(event) < event.capacity
    registration.status = (RegistrationStatus.REGISTERED if has_seat else RegistrationStatus.WAITLISTED).value
    if has_seat:
        registration.seated_at = moment
    db.session.add(registration)
    db.session.flush()
    issue_for_registration(registration)
    return registration, token


def get_active(token: str) -> Registration | None:
    """The registration holding this private token while it is not cancelled (nor erased)."""
    registration = get_by_token(token) if token and len(token) <= 100 else None
    return registration if registration is not None and registration.status != RegistrationStatus.CANCELLED else None


def get_by_token(token: str) -> Registration | None:
    """Return the registration holding this private token, or ``None``."""
    return db.session.scalar(select(Registration).where(Registration.token_hash == hash_secret(token)))


def fill_free_seats(event: Event) -> list[Registration]:
    """Promote waitlisted registrations, first come first served, into free seats."""
    if event.capacity is None:
        free = None
    else:
        free = event.capacity - _seated(event)
        if free <= 0:
            return []
    waiting = select(Registration).where(
        Registration.event_id == event.id, Registration.status == RegistrationStatus.WAITLISTED.value
    ).order_by(*WAITLIST_ORDER)
    promoted = list(db.session.scalars(waiting.limit(free) if free is not None else waiting))
    for registration in promoted:
        registration.status = RegistrationStatus.REGISTERED.value
        registration.seated_at = registration.promoted_at = now()
    db.session.flush()
    if promoted and event.status == Status.PUBLISHED and event.starts_at > now():
        from scheduler.reminders.dispatch import queue_participant_message  # the outbox builds on registrations

        for registration in promoted:
            queue_participant_message(event, "registration.promoted", [registration],
                                      dedupe_key=f"promoted:{registration.id}:{registration.seated_at.isoformat()}")
    return promoted


def cancel_registration(registration: Registration) -> list[Registration]:
    """Cancel a registration; a freed seat goes to the waitlist. Returns who was promoted."""
    if registration.status == RegistrationStatus.CANCELLED:
        raise Conflict("This registration is cancelled already.", code="already_cancelled")
    _lock_event(registration.event)
    held_seat = registration.status == RegistrationStatus.REGISTERED
    registration.status = RegistrationStatus.CANCELLED.value
    registration.cancelled_at = now()
    registration.calendar_token_hash = None  # its calendar link dies with it
    db.session.flush()
    if held_seat and registration.event.status == Status.PUBLISHED:
        return fill_free_seats(registration.event)
    return []


def was_promoted(registration: Registration) -> bool:
    """Whether the registration holds a seat it got from the waitlist."""
    return registration.promoted_at is not None and registration.status == RegistrationStatus.REGISTERED


def check_in_window(event: Event) -> tuple[dt.datetime, dt.datetime]:
    """When the door is open for check-in: from :data:`CHECK_IN_OPENS_BEFORE` the (first) start
    until the end of the local day (in the event's time zone) on which the event (its last
    occurrence, for a series) ends. Returns ``(opens, closes)``; ``closes`` is excluded."""
    tz = ZoneInfo(event.timezone)
    last_day = (event.last_ends_at.astimezone(tz) - dt.timedelta(microseconds=1)).date()
    closes = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return event.starts_at - CHECK_IN_OPENS_BEFORE, closes


def check_in_refusal(event: Event) -> Conflict | None:
    """Why no one can check in for ``event`` now (a draft or cancelled event, outside
    :func:`check_in_window`), or ``None`` when the door is open."""
    if event.status == Status.DRAFT:
        return Conflict("The event is a draft: nobody can check in.", code="event_draft")
    if event.status == Status.CANCELLED:
        return Conflict("The event is cancelled: nobody can check in.", code="event_cancelled")
    opens, closes = check_in_window(event)
    moment = now()
    if moment < opens:
        return Conflict(f"Check-in opens at {opens.isoformat()}, 24 hours before the start.", code="check_in_not_open")
    if moment >= closes:
        return Conflict(f"Check-in closed at {closes.isoformat()}, at the end of the event's last day.", code="check_in_closed")
    return None


def check_in(registration: Registration) -> Registration:
    """Record that a seated participant arrived (at :func:`now`).

    Raises 409 for a waitlisted or cancelled registration, one checked in already, a draft or
    cancelled event, and outside :func:`check_in_window`.
    """
    if registration.status == RegistrationStatus.WAITLISTED:
        raise Conflict("This person is on the waitlist, without a seat: only seated people check in.", code="waitlisted")
    if registration.status == RegistrationStatus.CANCELLED:
        raise Conflict("This registration is cancelled.", code="already_cancelled")
    refusal = check_in_refusal(registration.event)
    if refusal is not None:
        raise refusal
    if registration.checked_in_at is not None:
        raise Conflict(f"Checked in already, at {registration.checked_in_at.isoformat()}.", code="already_checked_in")
    registration.checked_in_at = now()
    db.session.flush()
    return registration


def undo_check_in(registration: Registration) -> Registration:
    """Take back a check-in made by mistake (within the same :func:`check_in_window`).

    Raises 409 when the registration is not checked in, for a draft or cancelled event, and
    outside the window (afterwards the record of who came stays as it is).
    """
    if registration.checked_in_at is None:
        raise Conflict("This person is not checked in.", code="not_checked_in")
    refusal = check_in_refusal(registration.event)
    if refusal is not None:
        raise refusal
    registration.checked_in_at = None
    db.session.flush()
    return registration


def anonymize(registration: Registration) -> None:
    """Remove the personal data and keep the row, so counts, check-ins and outcomes stay right:
    the name, the number and its hash go, and every private link of the registration dies."""
    registration.name = registration.phone = registration.phone_hash = None
    registration.token_hash = hash_secret(new_secret("gone_", 24))  # a token nobody holds
    registration.calendar_token_hash = None
    registration.channels = []
    registration.anonymized_at = now()
    db.session.flush()


def erase(registration: Registration) -> list[Registration]:
    """Erase a registration's personal data on request: cancelled first (its seat goes to the
    waitlist, as a cancellation's does), then :func:`anonymize`. Returns who was promoted."""
    promoted = [] if registration.status == RegistrationStatus.CANCELLED else cancel_registration(registration)
    anonymize(registration)
    return promoted
