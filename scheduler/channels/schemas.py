"""What the webhook and delivery endpoints take and give."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from scheduler.api.schemas import Body, CsvList, Out, Page, PageQuery
from scheduler.channels.models import EndpointKind
from scheduler.events.kinds import Kind
from scheduler.events.schemas import Slug
from scheduler.reminders.models import DeliveryStatus

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class MessageType(StrEnum):
    """Messages an endpoint can subscribe to."""

    REMINDER_DUE = "reminder.due"
    EVENT_PUBLISHED = "event.published"
    EVENT_UPDATED = "event.updated"
    EVENT_CANCELLED = "event.cancelled"


RobotSecret = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class WebhookCreate(Body):
    """A new endpoint. Empty filters mean "everything"."""

    url: Url = Field(description="Where to POST; a public http(s) address (a robot's webhook address with its key).")
    kind: EndpointKind = Field(EndpointKind.WEBHOOK, description="webhook (Standard Webhooks) or a group robot.")
    secret: RobotSecret | None = Field(None, description="DingTalk/Feishu: the robot's signing secret (加签). Webhooks get one made for them.")
    alerts: bool = Field(False, description="Send the owning organization's alerts here too.")
    org: Slug | None = Field(None, description="The owning organization (default: yours, when you belong to one).")
    description: Description = ""
    kinds: Annotated[list[Kind], Field(max_length=5)] = Field(default_factory=list, description="Only events of these kinds.")
    orgs: Annotated[list[Slug], Field(max_length=100)] = Field(default_factory=list, description="Only events of these organizations (and those below them).")
    types: Annotated[list[MessageType], Field(max_length=4)] = Field(default_factory=list, description="Only these message types.")


class WebhookUpdate(Body):
    """Only the fields sent change. ``enabled: true`` re-enables a disabled endpoint."""

    url: Url | None = None
    description: Description | None = None
    kinds: Annotated[list[Kind], Field(max_length=5)] | None = None
    orgs: Annotated[list[Slug], Field(max_length=100)] | None = None
    types: Annotated[list[MessageType], Field(max_length=4)] | None = None
    secret: RobotSecret | None = Field(None, description="Robots only: a new signing secret.")
    alerts: bool | None = None
    enabled: bool | None = None


class EndpointHealth(Out):
    """How sending to the endpoint has gone lately."""

    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    failing_since: dt.datetime | None
    consecutive_failures: int
    last_error: str | None
    disabled_reason: str | None
    disabled_at: dt.datetime | None


class WebhookOut(Out):
    """An endpoint (its secret is shown only when created or rotated)."""

    id: int
    org: str
    kind: str
    url: str
    description: str
    kinds: list[str]
    orgs: list[str]
    types: list[str]
    alerts: bool
    enabled: bool
    previous_secret_valid_until: dt.datetime | None = Field(description="Until when the secret before the last rotation still signs.")
    health: EndpointHealth
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookOut):
    """A new endpoint with its signing secret (a webhook's is shown this once)."""

    secret: str


class WebhookList(Out):
    """The endpoints you may see."""

    items: list[WebhookOut]


class SecretOut(Out):
    """A new signing secret; the previous one signs too until ``previous_secret_valid_until``."""

    secret: str
    previous_secret_valid_until: dt.datetime


class Queued(Out):
    """A message queued for sending: follow it in the delivery log."""

    delivery_id: str
    status: str


class DeliveryQuery(PageQuery):
    """Filters of the delivery log; list filters take ``a,b`` or repeated keys."""

    status: CsvList[DeliveryStatus] | None = None
    channel: CsvList[Annotated[str, StringConstraints(max_length=16)]] | None = None
    type: CsvList[Annotated[str, StringConstraints(max_length=32)]] | None = None
    event: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    endpoint: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class ReminderRef(Out):
    """The reminder a delivery carries."""

    id: int
    offset: str
    occurrence_start: dt.datetime
    scheduled_at: dt.datetime


class DeliveryOut(Out):
    """One message to one recipient on one channel. ``id`` is its idempotency key (``webhook-id``)."""

    id: str
    type: str
    channel: str
    status: DeliveryStatus
    recipient: str = Field(description="The endpoint's URL, or the registrant's masked phone number.")
    event: int | None
    endpoint: int | None
    reminder: ReminderRef | None
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="When it is tried next (waiting deliveries only).")
    not_after: dt.datetime | None = Field(description="Not sent after this moment (the event's start): expired instead.")
    last_error: str | None
    last_status_code: int | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeliveryPage(Page[DeliveryOut]):
    """One page of the delivery log, newest first."""


class AlertOut(Out):
    """Something an organization's managers should look at."""

    id: int
    org: str
    kind: str
    message: str
    subject: str
    created_at: dt.datetime


class AlertPage(Page[AlertOut]):
    """One page of alerts, newest first."""
