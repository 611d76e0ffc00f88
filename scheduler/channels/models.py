"""Webhook endpoints: where partner systems receive signed event messages."""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.util.sealed import SealedString
from scheduler.util.time import now
from scheduler.util.types import JSONType, UTCDateTime

#: Message types an endpoint can subscribe to (``ping`` always reaches it).
MESSAGE_TYPES = ("reminder.due", "event.published", "event.updated", "event.cancelled")


class EndpointKind(StrEnum):
    """What is at the URL: a partner system (Standard Webhooks) or a chat group's robot."""

    WEBHOOK = "webhook"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"


class WebhookEndpoint(db.Model):
    """A URL messages go to, owned by an organization, with its filters and health: a partner
    system's webhook, or a WeCom / DingTalk / Feishu group robot (``kind``)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The organization that owns the endpoint; its managers are told when it is disabled.
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    #: ``webhook``, ``wecom``, ``dingtalk`` or ``feishu`` (the channel its deliveries go on).
    kind: Mapped[str] = mapped_column(String(16), default=EndpointKind.WEBHOOK.value)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    #: Webhooks: ``whsec_`` + base64 of 24 random bytes; robots: their signing secret ("" for
    #: WeCom, whose key is in the URL). Signing needs it in clear, so it is sealed, not hashed
    #: (:mod:`scheduler.util.sealed`: encrypted with a key outside the database).
    secret: Mapped[str] = mapped_column(SealedString(500))
    #: The secret before the last rotation, signed with too until ``previous_secret_until``.
    previous_secret: Mapped[str | None] = mapped_column(SealedString(500))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Filters; an empty list means "all". ``org_ids`` match an organization and those below it.
    kinds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    org_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    types: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: The owning organization's alerts (dead deliveries, a disabled endpoint, ...) go here too.
    alerts: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Start of the current run of failures (cleared by a success); 5 days of it disables.
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    org: Mapped[Organization] = relationship()


def display_url(kind: str, url: str) -> str:
    """The URL as people may see it: a robot's key (WeCom ``key=``, DingTalk ``access_token=``,
    Feishu's last path segment) is a credential, so only its first characters are shown."""
    if kind == EndpointKind.WEBHOOK:
        return url
    parts = urlsplit(url)
    query = "&".join(f"{name}={value[:4]}…" if value else name for name, value in parse_qsl(parts.query, keep_blank_values=True))
    head, _, last = parts.path.rpartition("/")
    path = f"{head}/{last[:4]}…" if len(last) > 16 else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))
