"""What a channel is: it takes one outgoing message and says how sending it went.

A channel never decides policy (when to retry, when to give up, what to disable):
it reports :class:`Sent`, :class:`Retry` (with the recipient's own "not before", such
as ``Retry-After``), :class:`Failed` (permanent; ``gone`` when the recipient asked us
to stop) or :class:`Unknown` (the message may have arrived: never re-sent blindly),
and the sender applies the policy.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Outgoing:
    """One claimed delivery, as plain data a sender thread can use without the database."""

    id: str
    channel: str
    type: str
    payload: dict[str, Any]
    attempt: int
    #: Channel-specific recipient details loaded by :meth:`Channel.recipients` (URL and secrets, a phone number).
    recipient: Any = None
    #: The message as JSON text (``{"type", "timestamp", "data"}``): what a webhook POSTs.
    body: str = ""


@dataclass(frozen=True)
class Sent:
    """The recipient accepted the message."""

    status_code: int | None = None


@dataclass(frozen=True)
class Retry:
    """Not delivered this time; may succeed later (not before ``not_before`` when the recipient said so)."""

    reason: str
    status_code: int | None = None
    not_before: dt.datetime | None = None


@dataclass(frozen=True)
class Failed:
    """Will not succeed by trying again. ``gone``: the recipient asked never to be sent to again."""

    reason: str
    status_code: int | None = None
    gone: bool = False


@dataclass(frozen=True)
class Unknown:
    """The recipient may have taken the message without saying so (a timeout after sending)."""

    reason: str


Result = Sent | Retry | Failed | Unknown


@dataclass(frozen=True)
class Skip:
    """Do not send at all (the recipient is disabled or gone); the delivery is cancelled."""

    reason: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Defer:
    """Not now: wait until ``until`` (quiet hours, a daily cap). Not counted as an attempt."""

    until: dt.datetime
    reason: str


class Channel(Protocol):
    """A way out: webhooks now; SMS and chat robots plug in the same way."""

    #: The ``channel`` value of its deliveries.
    name: str

    def recipients(self, session: Session, deliveries: list[Any]) -> dict[str, Any]:
        """Load what sending needs for each delivery (by id) in one query, settings included;
        :class:`Skip` to cancel one, :class:`Defer` to hold it back.

        A channel may also offer ``send_many(outgoings) -> results`` with ``batch_key(outgoing)``
        (``None``: alone) and ``batch_size``: deliveries with the same key go in one request.
        """

    def send(self, outgoing: Outgoing) -> Result:
        """Send one message. Called from a sender thread outside any transaction and application
        context: whatever settings sending needs are read by :meth:`recipients`, into the recipient."""
