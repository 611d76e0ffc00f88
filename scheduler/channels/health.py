"""Webhook endpoint health: the last success, the run of failures, and when to give up on one."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update

from scheduler.alerts.operations import raise_alert
from scheduler.channels.base import Failed, Result, Sent
from scheduler.channels.models import WebhookEndpoint, display_url
from scheduler.channels.operations import cancel_waiting_deliveries
from scheduler.extensions import db
from scheduler.reminders import policy


#: A healthy endpoint's ``last_success_at`` is refreshed at most this often (a fan-out of
#: thousands of messages need not write the endpoint row thousands of times).
SUCCESS_REFRESH = dt.timedelta(seconds=30)


def record_endpoint_results(results: list[tuple[int, Result]], at: dt.datetime) -> None:
    """Update each endpoint's health from its results, in order; disable those that must stop (flush).

    Endpoints that only succeeded are updated in one statement (and only when something
    changes); those with a failure are locked, in id order, and replayed result by result.
    """
    failing = sorted({endpoint_id for endpoint_id, result in results if not isinstance(result, Sent)})
    healthy = sorted({endpoint_id for endpoint_id, _ in results} - set(failing))
    if healthy:
        db.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(healthy), WebhookEndpoint.enabled.is_(True),
                   or_(WebhookEndpoint.consecutive_failures != 0, WebhookEndpoint.last_success_at.is_(None),
                       WebhookEndpoint.last_success_at < at - SUCCESS_REFRESH))
            .values(last_success_at=at, failing_since=None, consecutive_failures=0, last_error=None)
            .execution_options(synchronize_session=False)
        )
    if not failing:
        return
    endpoints = {e.id: e for e in db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.id.in_(failing)).order_by(WebhookEndpoint.id).with_for_update()
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
            disable_endpoint(endpoint, "The endpoint answered 410 Gone." if result.status_code == 410 else result.reason, at)
        elif at - endpoint.failing_since >= policy.DISABLE_ENDPOINT_AFTER:
            disable_endpoint(endpoint, f"Every delivery failed for {policy.DISABLE_ENDPOINT_AFTER.days} days.", at)
    db.session.flush()


def disable_endpoint(endpoint: WebhookEndpoint, reason: str, at: dt.datetime) -> None:
    """Stop sending to an endpoint: its waiting deliveries are cancelled and its managers told (flush)."""
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, at
    cancel_waiting_deliveries(endpoint, f"The endpoint was disabled: {reason}")
    raise_alert(
        endpoint.org_id, "webhook.disabled",
        f"Endpoint {display_url(endpoint.kind, endpoint.url)} was disabled: {reason} Fix the receiver, then enable it again "
        f"(PATCH /api/v1/webhooks/{endpoint.id} with enabled=true) and replay what it missed.",
        subject=f"endpoint:{endpoint.id}",
    )
