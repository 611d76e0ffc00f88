"""The development SMS channel (``SMS_PROVIDER=console``): the text goes to the log, masked.

It stands in for the real providers (Alibaba Cloud, Tencent Cloud, a generic HTTP
gateway) that plug into the same channel interface; the messages it "sent" are kept
in :data:`OUTBOX` so a developer (or a test) can read them.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.channels.base import Outgoing, Result, Sent, Skip
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.phone import mask_phone

log = logging.getLogger(__name__)
#: The last messages "sent" (phone, text), newest last.
OUTBOX: deque[tuple[str, str]] = deque(maxlen=1000)


@dataclass(frozen=True)
class Phone:
    """Who a text goes to."""

    number: str
    name: str


def reminder_text(data: dict[str, Any]) -> str:
    """The reminder's text: ``【科普活动提醒】{title}将于6月22日 09:00开始，地点：…``."""
    event, reminder = data["event"], data["reminder"]
    tz = ZoneInfo(event["timezone"])
    start = dt.datetime.fromisoformat(reminder["occurrence_start"]).astimezone(tz)
    text = f"【科普活动提醒】{event['title']}将于{start.month}月{start.day}日 {start:%H:%M}开始"
    if event.get("venue"):
        text += f"，地点：{event['venue']}"
    meeting = reminder.get("meeting")
    if meeting:
        at = dt.datetime.fromisoformat(meeting["time"]).astimezone(tz)
        text += f"，集合：{at.month}月{at.day}日 {at:%H:%M}，{meeting['point']}"
    return text + "。"


class ConsoleSmsChannel:
    """Sends deliveries to registrants by writing them to the log."""

    name = "sms"

    def recipients(self, session: Session, deliveries: list[Any]) -> dict[str, Any]:
        """Each delivery's phone number; a registration cancelled meanwhile is skipped."""
        ids = {d.registration_id for d in deliveries}
        rows = {r.id: r for r in session.execute(
            select(Registration.id, Registration.phone, Registration.name, Registration.status).where(Registration.id.in_(ids))
        )}
        found: dict[str, Any] = {}
        for delivery in deliveries:
            row = rows.get(delivery.registration_id)
            if row is None or row.status != RegistrationStatus.REGISTERED:
                found[delivery.id] = Skip("The registration no longer holds a seat.")
            else:
                found[delivery.id] = Phone(row.phone, row.name)
        return found

    def send(self, outgoing: Outgoing) -> Result:
        """Log the text with the number masked (numbers never reach the log in full)."""
        phone: Phone = outgoing.recipient
        text = reminder_text(outgoing.payload["data"])
        OUTBOX.append((phone.number, text))
        log.info("SMS to %s: %s (id %s)", mask_phone(phone.number), text, outgoing.id)
        return Sent()
