"""``/metrics``: the reminder engine's state in Prometheus' text format, read from the database
at each scrape (so every web process answers the same, however many there are).

What to alert on: ``scheduler_deliveries_overdue_seconds`` growing (no worker is sending),
``scheduler_reminders_overdue_seconds`` growing (no scheduler is dispatching), and
``scheduler_deliveries{status="dead"}`` or ``{status="unknown"}`` rising.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from scheduler.channels.models import WebhookEndpoint
from scheduler.extensions import db
from scheduler.reminders.models import WAITING, Delivery, Reminder, ReminderStatus
from scheduler.util.time import now

bp = Blueprint("metrics", __name__)


class EngineCollector(Collector):
    """Gauges of deliveries, reminders and endpoints, counted when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the current values."""
        at = now()
        deliveries = GaugeMetricFamily("scheduler_deliveries", "Deliveries by status and channel.", labels=["status", "channel"])
        for status, channel, count in db.session.execute(
            select(Delivery.status, Delivery.channel, func.count()).group_by(Delivery.status, Delivery.channel)
        ):
            deliveries.add_metric([status, channel], count)
        yield deliveries
        oldest = db.session.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.status.in_(WAITING), Delivery.next_attempt_at <= at))
        yield GaugeMetricFamily("scheduler_deliveries_overdue_seconds", "How long the oldest due delivery has waited to be sent.",
                                value=(at - oldest).total_seconds() if oldest else 0.0)
        pending = db.session.scalar(select(func.min(Reminder.dispatch_at)).where(Reminder.status == ReminderStatus.PENDING.value,
                                                                                 Reminder.dispatch_at <= at))
        yield GaugeMetricFamily("scheduler_reminders_overdue_seconds", "How long the oldest due reminder has waited to be dispatched.",
                                value=(at - pending).total_seconds() if pending else 0.0)
        count = db.session.scalar(select(func.count()).where(Reminder.status == ReminderStatus.PENDING.value)) or 0
        yield GaugeMetricFamily("scheduler_reminders_pending", "Reminders planned and not yet dispatched.", value=count)
        endpoints = GaugeMetricFamily("scheduler_endpoints", "Endpoints by kind and whether enabled.", labels=["kind", "enabled"])
        for kind, enabled, number in db.session.execute(
            select(WebhookEndpoint.kind, WebhookEndpoint.enabled, func.count()).group_by(WebhookEndpoint.kind, WebhookEndpoint.enabled)
        ):
            endpoints.add_metric([kind, str(bool(enabled)).lower()], number)
        yield endpoints


_registry = CollectorRegistry(auto_describe=False)
_registry.register(EngineCollector())


@bp.get("/metrics")
def metrics() -> Response:
    """The engine's gauges in Prometheus' text format, for a scraper holding ``METRICS_TOKEN``
    (``Authorization: Bearer …``); without the setting the page is off (404)."""
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if not expected:
        return Response("Not found.\n", status=404, content_type="text/plain; charset=utf-8")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return Response("Send 'Authorization: Bearer <METRICS_TOKEN>'.\n", status=401, content_type="text/plain; charset=utf-8",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = generate_latest(_registry)
    db.session.rollback()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register ``/metrics``."""
    app.register_blueprint(bp)
