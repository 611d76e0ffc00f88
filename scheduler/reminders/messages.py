"""The messages the outbox carries: ``{"type", "timestamp", "data"}`` with the event as in the API.

Payloads are built once, when a delivery is queued, so every attempt (and a replay)
sends the same body under the same idempotency key.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.events.kinds import Kind
from scheduler.events.models import Event
from scheduler.events.presenters import present_events
from scheduler.events.schemas import parse_offset
from scheduler.reminders.models import Reminder
from scheduler.util.time import now
from scheduler.util.urls import absolute_url


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def event_data(event: Event) -> dict[str, Any]:
    """The event as the API shows it, plus the links a partner shows its users."""
    return events_data([event])[event.id]


def events_data(events: list[Event]) -> dict[int, dict[str, Any]]:
    """:func:`event_data` of several events at once (their seat counts in one query), by id."""
    found = {}
    for event, shown in zip(events, present_events(events)):
        data = shown.model_dump(mode="json")
        data["links"] |= {
            "page": absolute_url("pages.event_page", event_id=event.id),
            "ics": absolute_url("feeds.single_event", event_id=event.id),
        }
        found[event.id] = data
    return found


def reminder_data(reminder: Reminder, event: Event) -> dict[str, Any]:
    """Which occurrence a reminder is about and how far ahead it is; the contest stage it is
    ahead of (``stage``: key and moment); for a study tour, where and when to meet (the
    meeting time defaults to the occurrence's start)."""
    data: dict[str, Any] = {
        "id": reminder.id,
        "offset": reminder.offset,
        "occurrence_start": _iso(reminder.occurrence_start),
        "scheduled_at": _iso(reminder.scheduled_at),
    }
    stage, _, offset = reminder.offset.rpartition(":")
    if stage:  # a contest's reminder ahead of one of its stages, not of its start
        data["stage"] = {"key": stage, "at": _iso(reminder.scheduled_at + parse_offset(offset))}
    details = event.details or {}
    if event.kind == Kind.STUDY_TOUR and details.get("meeting_point"):
        data["meeting"] = {"point": details["meeting_point"], "time": details.get("meeting_time") or
                           reminder.occurrence_start.astimezone(ZoneInfo(event.timezone)).isoformat()}
    return data


def participant_event(event: Event) -> dict[str, Any]:
    """What a text about an event needs (no more: it is stored with every message)."""
    return {"id": event.id, "title": event.title, "timezone": event.timezone, "starts_at": _iso(event.starts_at),
            "venue": event.venue, "address": event.address, "cancel_reason": event.cancel_reason,
            "page": absolute_url("pages.event_page", event_id=event.id)}


def registrant_data(reminder: Reminder, event: Event) -> dict[str, Any]:
    """A reminder as a participant's text needs it."""
    return {"event": participant_event(event), "reminder": reminder_data(reminder, event)}


def payload(data: dict[str, Any], at: dt.datetime | None = None) -> dict[str, Any]:
    """What a delivery stores: the message's time and data (its type is a column)."""
    return {"timestamp": _iso(at or now()), "data": data}


def body(type_: str, stored: dict[str, Any]) -> str:
    """The JSON body sent: ``{"type", "timestamp", "data"}`` in that order, compact, UTF-8 text."""
    return json.dumps({"type": type_, "timestamp": stored["timestamp"], "data": stored["data"]}, ensure_ascii=False, separators=(",", ":"))
