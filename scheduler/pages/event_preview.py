"""The reminder schedule an event would get, for the organizers' form ("Preview reminders").

Nothing is saved: the form's values make an :class:`Event` that never joins the session, and
the plan is the one :func:`scheduler.reminders.plan.planned` makes for a saved event. A text's
time follows the quiet-hours rule of :func:`scheduler.channels.sms.rules.send_time`, and the
sample text is rendered by the SMS channel's own :func:`render_text` from the message a
registrant's reminder stores, so the organizer sees the text participants get.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from scheduler.channels.base import Outgoing
from scheduler.channels.sms.channel import SmsTarget, provider, render_text
from scheduler.channels.sms.rules import send_time
from scheduler.events.kinds import Kind
from scheduler.events.models import Event, Status
from scheduler.events.times import Times
from scheduler.i18n import format_local_datetime
from scheduler.pages.event_form import before_words
from scheduler.reminders.messages import registrant_data
from scheduler.reminders.models import Reminder
from scheduler.reminders.plan import planned
from scheduler.util.time import now
from scheduler.util.urls import absolute_url

#: The most reminders the preview lists (a long series has one set per occurrence).
MAX_ROWS = 50
#: The most different sample texts it shows.
MAX_TEXTS = 3
#: Stands for a registration's code in the sample text's link: as long as a real one (``/m/1z-…``).
SAMPLE_CODE = "xxx-" + "x" * 12


@dataclass(frozen=True)
class PreviewRow:
    """One planned reminder."""

    words: str
    due: str
    due_iso: str
    #: When a text goes (quiet hours moved it when ``shifted``).
    text_at: str
    text_at_iso: str
    shifted: bool
    #: Already due: the plan does not create it.
    past: bool


@dataclass(frozen=True)
class SampleText:
    """A text as participants get it, with its length and billed segments."""

    text: str
    characters: int
    segments: int


@dataclass(frozen=True)
class Preview:
    """The reminder schedule and sample texts."""

    rows: list[PreviewRow]
    more: int
    texts: list[SampleText]
    default_plan: bool


def unsaved_event(*, kind: Kind, title: str, venue: str, address: str, times: Times, all_day: bool, timezone: str,
                  details: dict[str, Any], reminders: list[str] | None, event_id: int | None = None,
                  exdates: list[str] | None = None) -> Event:
    """The event the form describes, never added to the session (its id, if any, is only for links)."""
    return Event(
        id=event_id or 0, kind=kind.value, title=title, venue=venue, address=address, starts_at=times.starts_at,
        ends_at=times.ends_at, last_ends_at=times.last_ends_at, span_seconds=times.span_seconds, all_day=all_day,
        timezone=timezone, rrule=times.rrule, exdates=list(exdates or []), reminder_offsets=reminders, details=details,
        status=Status.PUBLISHED.value, cancel_reason=None,
    )


def _sample(event: Event, reminder: Reminder) -> SampleText:
    """The text a registrant holding a seat gets for ``reminder`` (a placeholder in place of their code)."""
    outgoing = Outgoing(id="preview", channel="sms", type="reminder.due", payload={"data": registrant_data(reminder, event)}, attempt=0)
    target = SmsTarget(0, "", absolute_url("pages.manage_reminders", code=SAMPLE_CODE), provider(),
                       current_app.config.get("SMS_SIGN_NAME") or "江门科技")
    rendered = render_text(outgoing, target)
    return SampleText(rendered.text, len(rendered.text), rendered.segments)


def reminder_preview(event: Event) -> Preview:
    """Every reminder the event's plan has, when it is due and when its text goes, and sample texts."""
    tz = ZoneInfo(event.timezone)
    at = now()
    plan = sorted(planned(event), key=lambda p: (p.scheduled_at, p.offset))
    rows, texts = [], []
    for item in plan[:MAX_ROWS]:
        text_at = send_time(item.scheduled_at, item.occurrence_start, now=at)
        rows.append(PreviewRow(
            words=before_words(item.offset),
            due=format_local_datetime(item.scheduled_at, tz), due_iso=item.scheduled_at.astimezone(tz).isoformat(),
            text_at=format_local_datetime(text_at, tz), text_at_iso=text_at.astimezone(tz).isoformat(),
            shifted=text_at != item.scheduled_at, past=item.scheduled_at <= at,
        ))
        if len(texts) < MAX_TEXTS:
            reminder = Reminder(offset=item.offset, occurrence_start=item.occurrence_start, scheduled_at=item.scheduled_at)
            sample = _sample(event, reminder)
            if sample not in texts:
                texts.append(sample)
    return Preview(rows=rows, more=max(0, len(plan) - MAX_ROWS), texts=texts, default_plan=event.reminder_offsets is None)

