"""Turning due reminders and event changes into deliveries (the outbox); flush, never commit.

Recipients of a reminder: every registrant holding a seat, through each channel they
chose that the application can send on, and every enabled webhook endpoint whose
filters match the event. Waitlisted people get no "see you tomorrow" message.
Deliveries are inserted with ``ON CONFLICT DO NOTHING`` on ``(dedupe_key, recipient_key,
channel)``: a second dispatcher running the same reminder adds nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.registry import CHANNELS, REGISTRANT_CHANNELS
from scheduler.channels.sms.rules import send_time
from scheduler.events.models import Event, Status
from scheduler.events.schemas import parse_offset
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.reminders import messages, wakeup
from scheduler.reminders.models import Delivery, DeliveryStatus, OutboxMessage, Reminder, ReminderStatus
from scheduler.util.ids import new_ulid
from scheduler.util.time import now

log = logging.getLogger(__name__)

def anchor_of(reminder: Reminder) -> dt.datetime:
    """The moment a reminder is ahead of (the occurrence's start, or a contest's deadline)."""
    offset = reminder.offset.rsplit(":", 1)[-1]
    return reminder.scheduled_at + parse_offset(offset)


class Subscribers:
    """The enabled endpoints and the organization tree, read once for a run of messages."""

    def __init__(self) -> None:
        self.endpoints = db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)
        ).all()
        self._parents: dict[int, int | None] | None = None

    def _above(self, org_id: int) -> set[int]:
        if self._parents is None:
            self._parents = {org_id: parent for org_id, parent in db.session.execute(select(Organization.id, Organization.parent_id))}
        found: set[int] = set()
        current: int | None = org_id
        while current is not None and current not in found:
            found.add(current)
            current = self._parents.get(current)
        return found

    def matching(self, event: Event, type_: str) -> list[WebhookEndpoint]:
        """Endpoints whose kinds, organizations and types filters all let this message through."""
        above = self._above(event.org_id) if any(e.org_ids for e in self.endpoints) else set()
        return [
            e for e in self.endpoints
            if e.kind in CHANNELS
            and (not e.types or type_ in e.types)
            and (not e.kinds or event.kind in e.kinds)
            and (not e.org_ids or above.intersection(e.org_ids))
        ]


def _insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(Delivery.__table__).on_conflict_do_nothing(index_elements=["dedupe_key", "recipient_key", "channel"])
    for start in range(0, len(rows), 1000):
        db.session.execute(stmt, rows[start:start + 1000])
    wakeup.deliveries_queued(db.session)


def _message(type_: str, data: dict[str, Any], at: dt.datetime) -> int:
    """Store one message (shared by all its deliveries); returns its id."""
    return db.session.execute(
        insert(OutboxMessage.__table__).values(type=type_, payload=messages.payload(data, at), created_at=now())
        .returning(OutboxMessage.__table__.c.id)
    ).scalar_one()


def _row(dedupe_key: str, recipient_key: str, channel: str, type_: str, message_id: int, at: dt.datetime, **links: Any) -> dict[str, Any]:
    return {
        "id": new_ulid(), "dedupe_key": dedupe_key, "recipient_key": recipient_key, "channel": channel, "type": type_,
        "reminder_id": None, "event_id": None, "endpoint_id": None, "registration_id": None, "not_after": None,
        "message_id": message_id, "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": at,
        "created_at": at, "updated_at": at, **links,
    }


def queue_event_message(event: Event, type_: str, *, changes: dict[str, Any] | None = None, dedupe_key: str | None = None) -> int:
    """Queue ``event.published`` / ``event.updated`` / ``event.cancelled`` for the subscribed endpoints.

    ``changes`` (for ``event.updated``) maps each changed field to ``{"old", "new"}``.
    Returns how many endpoints it is for (queuing the same message again adds nothing).
    """
    endpoints = Subscribers().matching(event, type_)
    if not endpoints:
        return 0
    at = now()
    data: dict[str, Any] = {"event": messages.event_data(event)}
    if changes is not None:
        data["changes"] = changes
    message_id = _message(type_, data, at)
    key = dedupe_key or f"event:{event.id}:{type_}:{event.sequence}"
    _insert_ignoring_duplicates([
        _row(key, f"endpoint:{e.id}", e.kind, type_, message_id, at, event_id=event.id, endpoint_id=e.id) for e in endpoints
    ])
    return len(endpoints)


def queue_participant_message(event: Event, type_: str, registrations: list[Registration], *, change: str = "",
                              dedupe_key: str | None = None) -> int:
    """Tell participants about their event (``event.cancelled``, ``event.updated`` with ``change``
    in words, ``registration.promoted``) on the channels they chose; returns how many were queued."""
    wanted = [(r, channel) for r in registrations for channel in r.channels or () if channel in REGISTRANT_CHANNELS]
    if not wanted:
        return 0
    at = now()
    message_id = _message(type_, {"event": messages.participant_event(event), "change": change}, at)
    key = dedupe_key or f"event:{event.id}:{type_}:{event.sequence}"
    _insert_ignoring_duplicates([
        _row(key, f"registration:{r.id}", channel, type_, message_id, at, event_id=event.id, registration_id=r.id,
             not_after=event.starts_at)
        for r, channel in wanted
    ])
    return len(wanted)


def queue_alert(org_id: int, kind: str, text: str) -> int:
    """Send an organization's alert to its endpoints that take alerts (a group robot, usually)."""
    endpoints = db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.alerts.is_(True), WebhookEndpoint.enabled.is_(True)
    )).all()
    endpoints = [e for e in endpoints if e.kind in CHANNELS]
    if not endpoints:
        return 0
    at = now()
    message_id = _message("alert", {"kind": kind, "message": text}, at)
    _insert_ignoring_duplicates([
        _row(f"alert:{message_id}", f"endpoint:{e.id}", e.kind, "alert", message_id, at, endpoint_id=e.id) for e in endpoints
    ])
    return len(endpoints)


def queue_ping(endpoint: WebhookEndpoint) -> str:
    """Queue a test message to one endpoint; returns the delivery's id."""
    at = now()
    row = _row(f"ping:{new_ulid()}", f"endpoint:{endpoint.id}", endpoint.kind, "ping", _message("ping", {"endpoint_id": endpoint.id}, at), at,
               endpoint_id=endpoint.id)
    _insert_ignoring_duplicates([row])
    return row["id"]


def _reminder_rows(reminder: Reminder, event: Event, data: dict[str, Any], subscribers: Subscribers, at: dt.datetime) -> list[dict[str, Any]]:
    key, not_after, send_at = f"reminder:{reminder.id}", anchor_of(reminder), max(at, reminder.scheduled_at)
    links = {"reminder_id": reminder.id, "event_id": event.id, "not_after": not_after, "next_attempt_at": send_at}
    rows = []
    endpoints = subscribers.matching(event, "reminder.due")
    if endpoints:
        message_id = _message("reminder.due", {"event": data, "reminder": messages.reminder_data(reminder, event)}, send_at)
        rows += [_row(key, f"endpoint:{e.id}", e.kind, "reminder.due", message_id, at, endpoint_id=e.id, **links) for e in endpoints]
    seated = db.session.execute(
        select(Registration.id, Registration.channels).where(
            Registration.event_id == event.id, Registration.status == RegistrationStatus.REGISTERED.value
        )
    ).all()
    if seated:
        message_id = _message("reminder.due", messages.registrant_data(reminder, event), send_at)
        texts_at = {**links, "next_attempt_at": send_time(reminder.scheduled_at, reminder.occurrence_start, now=at)}
        rows += [
            _row(key, f"registration:{reg_id}", channel, "reminder.due", message_id, at, registration_id=reg_id,
                 **(texts_at if channel == "sms" else links))
            for reg_id, channels in seated for channel in channels or () if channel in REGISTRANT_CHANNELS
        ]
    return rows


def dispatch_due(at: dt.datetime | None = None, limit: int = 200, lookahead: dt.timedelta = dt.timedelta(0)) -> int:
    """Turn up to ``limit`` reminders due by ``at + lookahead`` into deliveries; returns how many were handled.

    With a ``lookahead`` the deliveries of reminders due in the next seconds are written
    ahead, to go at their ``scheduled_at`` (senders wake for it), so a thousand reminders
    due in the same second leave on time; changing the event before then takes them back
    (:func:`~scheduler.reminders.plan.sync_reminders`). A reminder whose moment has passed
    (the event started, the deadline went by) is ``expired`` instead: nobody wants
    yesterday's reminder. Rows are locked with ``SKIP LOCKED``, so two dispatchers share
    the work instead of doubling it.
    """
    at = at or now()
    due = db.session.scalars(
        select(Reminder)
        .where(Reminder.status == ReminderStatus.PENDING.value, Reminder.dispatch_at <= at + lookahead)
        .order_by(Reminder.dispatch_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    rows: list[dict[str, Any]] = []
    events = {e.id: e for e in db.session.scalars(
        select(Event).where(Event.id.in_({r.event_id for r in due})).options(selectinload(Event.org))
    )}
    live = [e for e in events.values() if e.status == Status.PUBLISHED]
    data = messages.events_data(live) if live else {}
    subscribers = Subscribers() if due else None
    for reminder in due:
        event = events.get(reminder.event_id)
        if event is None or event.status != Status.PUBLISHED:
            reminder.status = ReminderStatus.CANCELLED.value
        elif anchor_of(reminder) <= at:
            reminder.status = ReminderStatus.EXPIRED.value
            log.info("reminder %s of event %s expired: its moment passed before it was sent", reminder.id, event.id)
        else:
            assert subscribers is not None
            rows += _reminder_rows(reminder, event, data[event.id], subscribers, at)
            reminder.status = ReminderStatus.DISPATCHED.value
        reminder.updated_at = at
    _insert_ignoring_duplicates(rows)
    db.session.flush()
    return len(due)
