"""The reminder plan of an event, kept in step with the event (flush, never commit).

Each occurrence gets the event's offsets before its start (or the kind's default plan:
a contest is reminded of before its registration deadline and its final). Reminders
already due when planned are not created: nobody wants a "7 days before" message
two days before.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select

from scheduler.channels.sms.rules import send_time
from scheduler.events.kinds import Kind
from scheduler.events.models import Event, Status
from scheduler.events.operations import effective_reminders
from scheduler.events.schemas import parse_offset
from scheduler.events.times import occurrence_starts
from scheduler.extensions import db
from scheduler.reminders import wakeup
from scheduler.reminders.models import Delivery, DeliveryStatus, Reminder, ReminderStatus
from scheduler.util.time import now

#: A contest's default plan: (anchor in its details, offset before it).
CONTEST_PLAN = (("registration_deadline", "P3D"), ("final_at", "P1D"))


@dataclass(frozen=True)
class Planned:
    """One reminder the plan wants."""

    occurrence_start: dt.datetime
    offset: str
    scheduled_at: dt.datetime

    def dispatch_at(self, at: dt.datetime) -> dt.datetime:
        """When to write its deliveries: when due, or the evening before for a text due at night."""
        return min(self.scheduled_at, send_time(self.scheduled_at, self.occurrence_start, now=at))


def planned(event: Event) -> list[Planned]:
    """Every reminder the event's plan wants, due or not."""
    if event.kind == Kind.CONTEST and event.reminder_offsets is None:
        result = []
        for anchor, offset in CONTEST_PLAN:
            if event.details.get(anchor):
                moment = dt.datetime.fromisoformat(event.details[anchor])
                result.append(Planned(event.starts_at, f"{anchor}:{offset}", moment - parse_offset(offset)))
        return result
    excluded = set(event.exdates or [])
    starts = [s for s in occurrence_starts(event.starts_at, event.timezone, event.rrule) if s.isoformat() not in excluded]
    return [Planned(start, offset, start - parse_offset(offset)) for start in starts for offset in effective_reminders(event)]


def sync_reminders(event: Event) -> None:
    """Bring the event's pending reminders in line with its plan.

    A published event gets the reminders still ahead; a moved one has its pending
    reminders moved; anything else (draft, cancelled, completed) has them cancelled.
    Reminders already sent or expired are history and stay as they are; one dispatched
    ahead of its time (see :func:`~scheduler.reminders.dispatch.dispatch_due`) whose
    messages have not gone yet is taken back and planned again, so the change shows.
    """
    at = now()
    wanted = {}
    if event.status == Status.PUBLISHED:
        wanted = {(p.occurrence_start, p.offset): p for p in planned(event) if p.scheduled_at > at}
    existing = {(r.occurrence_start, r.offset): r for r in db.session.scalars(select(Reminder).where(Reminder.event_id == event.id))}
    early = [r for r in existing.values() if r.status == ReminderStatus.DISPATCHED and r.scheduled_at > at]
    if early:
        _take_back(early)
    for key, reminder in existing.items():
        if reminder.status == ReminderStatus.PENDING and key not in wanted:
            reminder.status = ReminderStatus.CANCELLED.value
    earliest = None
    for key, plan in wanted.items():
        reminder = existing.get(key)
        if reminder is None:
            dispatch_at = plan.dispatch_at(at)
            db.session.add(Reminder(event_id=event.id, occurrence_start=plan.occurrence_start, offset=plan.offset,
                                    scheduled_at=plan.scheduled_at, dispatch_at=dispatch_at, status=ReminderStatus.PENDING.value))
        elif reminder.status in (ReminderStatus.PENDING, ReminderStatus.CANCELLED):
            dispatch_at = plan.dispatch_at(at)
            unchanged = (reminder.scheduled_at, reminder.dispatch_at) == (plan.scheduled_at, dispatch_at)
            if reminder.status == ReminderStatus.PENDING and unchanged and reminder not in early:
                continue
            reminder.status, reminder.scheduled_at, reminder.dispatch_at = ReminderStatus.PENDING.value, plan.scheduled_at, dispatch_at
        else:
            continue
        earliest = dispatch_at if earliest is None else min(earliest, dispatch_at)
    db.session.flush()
    if earliest is not None:
        wakeup.reminders_planned(db.session, earliest)


def _take_back(reminders: list[Reminder]) -> None:
    """Undo an early dispatch: its deliveries, none of them tried yet, go; the reminders are pending again."""
    db.session.execute(
        delete(Delivery).where(Delivery.reminder_id.in_([r.id for r in reminders]), Delivery.status == DeliveryStatus.PENDING.value,
                               Delivery.attempts == 0)
    )
    for reminder in reminders:
        reminder.status = ReminderStatus.PENDING.value


def next_due(after: dt.datetime | None = None) -> dt.datetime | None:
    """When the earliest pending reminder is to be dispatched (what the scheduler's date job wakes up for)."""
    stmt = select(Reminder.dispatch_at).where(Reminder.status == ReminderStatus.PENDING.value)
    if after is not None:
        stmt = stmt.where(Reminder.dispatch_at > after)
    return db.session.scalar(stmt.order_by(Reminder.dispatch_at).limit(1))
