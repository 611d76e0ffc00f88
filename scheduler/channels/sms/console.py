"""The development provider (``SMS_PROVIDER=console``): each text goes to the log, the number masked.

Every message is ``sent``; what was "sent" is kept in :data:`OUTBOX` (phone, text), newest
last, for a developer or a test to read.
"""
from __future__ import annotations

import logging
from collections import deque

from scheduler.channels.sms.base import SmsMessage, SmsOutcome
from scheduler.util.phone import mask_phone

log = logging.getLogger(__name__)
#: The last texts "sent": (phone, text), newest last.
OUTBOX: deque[tuple[str, str]] = deque(maxlen=1000)


class ConsoleSms:
    """Writes texts to the log."""

    name = "console"
    batch_size = 100
    per_number_text = True

    def send(self, messages: list[SmsMessage]) -> list[SmsOutcome]:
        """Log and keep each text; all are ``sent``."""
        outcomes = []
        for m in messages:
            OUTBOX.append((m.phone, m.text))
            # a verification code must reach the developer whatever the log level: it is what they type next
            level = logging.WARNING if m.template == "verify" else logging.INFO
            log.log(level, "SMS to %s (%s, id %s): %s", mask_phone(m.phone), m.template, m.id, m.text)
            outcomes.append(SmsOutcome(m.id, "sent", "", provider_id=f"console-{m.id}"))
        return outcomes
