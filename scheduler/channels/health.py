"""Webhook endpoint health: the last success, the run of failures, and when to give up on one."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from scheduler.alerts.operations import raise_alert
from scheduler.channels.base import Failed, Result, Sent
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.operations import cancel_waiting_deliveries
from scheduler.extensions import db
from scheduler.reminders import policy


def record_endpoint_results(results: list[tuple[int, Result]], at: dt.datetime) -> None:
    """Update each endpoint's health from its results, in order; disable those that must stop (flush)."""
    endpoints = {e.id: e for e in db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id.in_({endpoint_id for endpoint_id, _ in results})).with_for_update()
    )}
    for endpoint_id, result in results:
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None or not endpoint.enabled:
            continue
        if isinstance(result, Sent):
            endpoint.last_success_at, endpoint.failing_since = at, None
            endpoint.consecutive_failures, endpoint.last_error = 0, None
            continue
        endpoint.last_failure_at = at
        endpoint.failing_since = endpoint.failing_since or at
        endpoint.consecutive_failures += 1
        endpoint.last_error = getattr(result, "reason", "")[:500]
        if isinstance(result, Failed) and result.gone:
            disable_endpoint(endpoint, "The endpoint answered 410 Gone.", at)
        elif at - endpoint.failing_since >= policy.DISABLE_ENDPOINT_AFTER:
            disable_endpoint(endpoint, f"Every delivery failed for {policy.DISABLE_ENDPOINT_AFTER.days} days.", at)
    db.session.flush()


def disable_endpoint(endpoint: WebhookEndpoint, reason: str, at: dt.datetime) -> None:
    """Stop sending to an endpoint: its waiting deliveries are cancelled and its managers told (flush)."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, at
    cancel_waiting_deliveries(endpoint, f"The endpoint was disabled: {reason}")
    raise_alert(
        endpoint.org_id, "webhook.disabled",
        f"Webhook endpoint {endpoint.url} was disabled: {reason} Fix the receiver, then enable it again "
        f"(PATCH /api/v1/webhooks/{endpoint.id} with enabled=true) and replay what it missed.",
        subject=f"endpoint:{endpoint.id}",
    )
