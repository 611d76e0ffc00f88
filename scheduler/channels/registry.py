"""The channels the sender can use, by name (a provider registry, as CTFd does)."""
from __future__ import annotations

from scheduler.channels.base import Channel
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.robots import RobotChannel
from scheduler.channels.sms.channel import SmsChannel
from scheduler.channels.sms.links import unsubscribe_url
from scheduler.channels.webhook import WebhookChannel

def _unsubscribe(endpoint: WebhookEndpoint) -> str:
    return unsubscribe_url(endpoint.id)


CHANNELS: dict[str, Channel] = {
    "webhook": WebhookChannel(),
    "sms": SmsChannel(),
    **{kind: RobotChannel(kind, unsubscribe_url=_unsubscribe) for kind in ("wecom", "dingtalk", "feishu")},
}

#: Channels a registrant can choose that the application sends on.
REGISTRANT_CHANNELS = frozenset({"sms"})


def get_channel(name: str) -> Channel:
    """The channel called ``name`` (a ``KeyError`` for an unknown one is a bug)."""
    return CHANNELS[name]
