"""The development SMS channel (``SMS_PROVIDER=console``): the text goes to the log, masked.

It stands in for the real providers (Alibaba Cloud, Tencent Cloud, a generic HTTP
gateway) that plug into the same channel interface; the messages it "sent" are kept
in :data:`OUTBOX` so a developer (or a test) can read them.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

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
        reminder = outgoing.payload["data"].get("reminder", {})
        text = f"[reminder {outgoing.type}] event {outgoing.payload['data'].get('event_id')} at {reminder.get('occurrence_start')}"
        OUTBOX.append((phone.number, text))
        log.info("SMS to %s: %s (id %s)", mask_phone(phone.number), text, outgoing.id)
        return Sent()
