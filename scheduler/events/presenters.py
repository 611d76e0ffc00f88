"""Turning events into their API representation."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from scheduler.events.kinds import KINDS, Kind
from scheduler.events.models import Event
from scheduler.events.operations import effective_reminders
from scheduler.events.schemas import EventLinks, EventOut, OutcomeOut
from scheduler.registrations.operations import registration_closes_at, seat_counts
from scheduler.util.urls import absolute_url


def present_events(events: list[Event]) -> list[EventOut]:
    """Return the API form of ``events`` (seat counts fetched in one query)."""
    counts = seat_counts([e.id for e in events])
    return [_present(event, counts[event.id]) for event in events]


def present_event(event: Event) -> EventOut:
    """Return the API form of one event."""
    return present_events([event])[0]


def _present(event: Event, counts: dict[str, int]) -> EventOut:
    tz = ZoneInfo(event.timezone)
    info = KINDS[Kind(event.kind)]
    seats_left = None if event.capacity is None else max(event.capacity - counts["registered"], 0)
    return EventOut(
        id=event.id,
        uid=event.uid,
        kind=info.key,
        kind_name_zh=info.name_zh,
        kind_name_en=info.name_en,
        title=event.title,
        description=event.description,
        org=event.org.slug,
        org_name_zh=event.org.name_zh,
        org_name_en=event.org.name_en,
        venue=event.venue,
        address=event.address,
        latitude=event.latitude,
        longitude=event.longitude,
        starts_at=event.starts_at.astimezone(tz),
        ends_at=event.ends_at.astimezone(tz),
        all_day=event.all_day,
        timezone=event.timezone,
        rrule=event.rrule,
        exdates=[dt.datetime.fromisoformat(stamp).astimezone(tz) for stamp in event.exdates or []],
        status=event.status,
        capacity=event.capacity,
        registered=counts["registered"],
        waitlisted=counts["waitlisted"],
        seats_left=seats_left,
        registration_closes_at=registration_closes_at(event).astimezone(tz),
        details=event.details or {},
        outcome=OutcomeOut.model_validate(event.outcome) if event.outcome else None,
        reminders=effective_reminders(event),
        sequence=event.sequence,
        cancel_reason=event.cancel_reason,
        created_at=event.created_at,
        updated_at=event.updated_at,
        links=EventLinks(
            self=absolute_url("api.get_event", event_id=event.id),
            registrations=absolute_url("api.create_registration", event_id=event.id),
        ),
    )
