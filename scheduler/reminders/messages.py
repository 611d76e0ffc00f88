"""The messages the outbox carries: ``{"type", "timestamp", "data"}`` with the event as in the API.

Payloads are built once, when a delivery is queued, so every attempt (and a replay)
sends the same body under the same idempotency key.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from scheduler.events.models import Event
from scheduler.events.presenters import present_events
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


def reminder_data(reminder: Reminder) -> dict[str, Any]:
    """Which occurrence a reminder is about and how far ahead it is."""
    return {
        "id": reminder.id,
        "offset": reminder.offset,
        "occurrence_start": _iso(reminder.occurrence_start),
        "scheduled_at": _iso(reminder.scheduled_at),
    }


def payload(data: dict[str, Any], at: dt.datetime | None = None) -> dict[str, Any]:
    """What a delivery stores: the message's time and data (its type is a column)."""
    return {"timestamp": _iso(at or now()), "data": data}


def body(type_: str, stored: dict[str, Any]) -> str:
    """The JSON body sent: ``{"type", "timestamp", "data"}`` in that order, compact, UTF-8 text."""
    return json.dumps({"type": type_, "timestamp": stored["timestamp"], "data": stored["data"]}, ensure_ascii=False, separators=(",", ":"))
