"""Sending the outbox: claim due deliveries with a lease, send them, record what happened.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``: any
number of senders (threads here, ``flask worker run`` processes elsewhere) share the
work without sending a delivery twice. The claim is committed before the network call;
the result is written only by the claim's holder (``leased_by``), so a sender that was
presumed dead and comes back cannot overwrite what another did after it.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, case, func, or_, select, update

from scheduler.channels.base import Defer, Failed, Outgoing, Result, Retry, Sent, Skip, Unknown
from scheduler.channels.registry import get_channel
from scheduler.extensions import db
from scheduler.reminders import messages, policy
from scheduler.reminders.models import WAITING, Delivery, DeliveryStatus, OutboxMessage
from scheduler.util.ids import new_ulid
from scheduler.util.time import now

log = logging.getLogger(__name__)
_T = Delivery.__table__


@dataclass(frozen=True)
class Claim:
    """What one claim took: its token, how many rows, and those to send."""

    token: str
    claimed: int
    outgoing: list[Outgoing]


def claim(limit: int, token: str | None = None, at: dt.datetime | None = None) -> Claim:
    """Claim up to ``limit`` due deliveries for this sender (flush; commit before sending).

    A webhook or robot endpoint has at most :func:`endpoint_claim_cap` deliveries claimed at
    once, by all senders together: the rest of its backlog waits untouched (it is claimed as
    the claimed ones finish) while other endpoints' deliveries are claimed, so one slow
    endpoint cannot fill the senders' queues. Deliveries whose moment has passed
    become ``expired`` and those whose recipient is gone ``cancelled``, unsent.
    """
    at, token = at or now(), token or new_ulid()
    claimed = (
        update(_T)
        .values(status=DeliveryStatus.SENDING.value, leased_by=token, lease_until=at + policy.lease(),
                attempts=_T.c.attempts + 1, updated_at=at)
        .returning(_T.c.id, _T.c.channel, _T.c.type, _T.c.message_id, _T.c.attempts, _T.c.not_after,
                   _T.c.endpoint_id, _T.c.registration_id)
    )
    due = (
        select(_T.c.id)
        .where(_T.c.status.in_(WAITING), _T.c.next_attempt_at <= at)
        .order_by(_T.c.next_attempt_at, _T.c.id)  # ids are ULIDs: oldest first among equals
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    per_endpoint = policy.per_endpoint()
    if not per_endpoint:
        rows = db.session.execute(claimed.where(_T.c.id.in_(due.scalar_subquery()))).all()
    else:
        ids = _within_caps(per_endpoint, due)
        rows = db.session.execute(claimed.where(_T.c.id.in_(ids), _T.c.status.in_(WAITING))).all() if ids else []
    expired = [row for row in rows if row.not_after is not None and row.not_after <= at]
    _finish(token, at, [(row.id, DeliveryStatus.EXPIRED, "Not sent: the event had started (or its moment had passed).") for row in expired])
    by_channel: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row not in expired:
            by_channel[row.channel].append(row)
    outgoing, skipped, deferred = [], [], []
    stored = _messages({row.message_id for group in by_channel.values() for row in group})
    for channel, group in by_channel.items():
        recipients = get_channel(channel).recipients(db.session, group)
        for row in group:
            recipient = recipients[row.id]
            if isinstance(recipient, Skip):
                skipped.append((row.id, DeliveryStatus.CANCELLED, recipient.reason))
            elif isinstance(recipient, Defer):
                deferred.append((row.id, recipient))
            else:
                payload, body = stored[row.message_id]
                outgoing.append(Outgoing(row.id, row.channel, row.type, payload, row.attempts, recipient, body))
    _finish(token, at, skipped)
    _defer(token, at, deferred)
    return Claim(token, len(rows), outgoing)


def endpoint_claim_cap(channel: str, per_endpoint: int) -> int:
    """Deliveries one endpoint of ``channel`` may have claimed at once: :data:`policy.CLAIMED_PER_REQUEST`
    for each of its ``per_endpoint`` requests at once, times the deliveries a digest folds into one request."""
    return per_endpoint * policy.CLAIMED_PER_REQUEST * max(int(getattr(get_channel(channel), "batch_size", 1)), 1)


def _within_caps(per_endpoint: int, due: Select[Any]) -> list[str]:
    """The ids of ``due`` (locked) to claim: all but what would take an endpoint over its cap."""
    held = db.session.execute(
        select(_T.c.endpoint_id, _T.c.channel, func.count())
        .where(_T.c.status == DeliveryStatus.SENDING.value, _T.c.endpoint_id.is_not(None))
        .group_by(_T.c.endpoint_id, _T.c.channel)
    ).all()
    room = {endpoint_id: endpoint_claim_cap(channel, per_endpoint) - count for endpoint_id, channel, count in held}
    full = [endpoint_id for endpoint_id, left in room.items() if left <= 0]
    if full:  # their backlog is not even looked at (nor locked)
        due = due.where(or_(_T.c.endpoint_id.is_(None), _T.c.endpoint_id.not_in(full)))
    ids = []
    for row in db.session.execute(due.add_columns(_T.c.endpoint_id, _T.c.channel)):
        if row.endpoint_id is not None:
            left = room.get(row.endpoint_id, endpoint_claim_cap(row.channel, per_endpoint))
            room[row.endpoint_id] = left - 1
            if left <= 0:
                continue
        ids.append(row.id)
    return ids


def _defer(token: str, at: dt.datetime, deferred: list[tuple[str, Defer]]) -> None:
    """Put deliveries back to wait until a later time (quiet hours, a daily cap): not an attempt."""
    for id_, defer in deferred:
        db.session.execute(
            update(_T).where(_T.c.id == id_, _T.c.leased_by == token, _T.c.status == DeliveryStatus.SENDING.value)
            .values(status=case((_T.c.attempts > 1, DeliveryStatus.RETRYING.value), else_=DeliveryStatus.PENDING.value),
                    attempts=_T.c.attempts - 1, next_attempt_at=defer.until, last_error=defer.reason,
                    leased_by=None, lease_until=None, updated_at=at)
        )


def _messages(ids: set[int]) -> dict[int, tuple[dict[str, Any], str]]:
    """The claimed deliveries' messages, read and serialised once each however many recipients share them."""
    if not ids:
        return {}
    rows = db.session.execute(select(OutboxMessage.id, OutboxMessage.type, OutboxMessage.payload).where(OutboxMessage.id.in_(ids)))
    return {row.id: (row.payload, messages.body(row.type, row.payload)) for row in rows}


def _finish(token: str, at: dt.datetime, done: list[tuple[str, DeliveryStatus, str]]) -> None:
    if done:
        db.session.execute(
            update(_T)
            .where(_T.c.id == bindparam("b_id"), _T.c.leased_by == token, _T.c.status == DeliveryStatus.SENDING.value)
            .values(status=bindparam("b_status"), last_error=bindparam("b_error"), leased_by=None, lease_until=None, updated_at=at),
            [{"b_id": id_, "b_status": status.value, "b_error": error} for id_, status, error in done],
        )


def send_one(outgoing: Outgoing) -> Result:
    """Send through the delivery's channel; a bug in a channel becomes a retry, never a lost message."""
    return send_batch([outgoing])[0]


def send_batch(batch: list[Outgoing]) -> list[Result]:
    """Send deliveries that :func:`batches` put together (one request where the channel can).

    A bug in a channel becomes a retry (or, where a repeat could double a text, ``unknown``),
    never a lost message.
    """
    channel = get_channel(batch[0].channel)
    try:
        if hasattr(channel, "send_many"):
            return list(channel.send_many(batch))
        return [channel.send(item) for item in batch]
    except Exception as exc:
        log.exception("channel %s failed on %d deliveries", batch[0].channel, len(batch))
        reason = f"Internal error while sending: {type(exc).__name__}."
        return [Unknown(reason) if policy.RECLAIMED_AS.get(item.channel) == DeliveryStatus.UNKNOWN else Retry(reason) for item in batch]


def batches(outgoing: list[Outgoing]) -> list[list[Outgoing]]:
    """Group deliveries a channel sends in one request (its ``batch_key`` and ``batch_size``); others alone."""
    groups: dict[Any, list[Outgoing]] = {}
    single: list[list[Outgoing]] = []
    for item in outgoing:
        channel = get_channel(item.channel)
        key = channel.batch_key(item) if hasattr(channel, "batch_key") else None
        if key is None:
            single.append([item])
            continue
        group = groups.setdefault((item.channel, key), [])
        group.append(item)
        if len(group) >= getattr(channel, "batch_size", 1):
            single.append(groups.pop((item.channel, key)))
    return single + list(groups.values())


def record(token: str, results: Iterable[tuple[Outgoing, Result]], at: dt.datetime | None = None) -> None:
    """Write each result under the claim ``token`` and apply the channel's retry policy (flush).

    Results with the same outcome (typically: sent, now) are written in one statement.
    Only rows this claim still holds change, and only their results count toward the
    endpoint's health: a claim taken back meanwhile must not disable (or heal) an endpoint.
    """
    at = at or now()
    results = list(results)
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for outgoing, result in results:
        groups[_outcome(outgoing, result, at)].append(outgoing.id)
    held: set[str] = set()
    for (status, next_at, sent_at, error, code), ids in groups.items():
        for start in range(0, len(ids), 500):
            held.update(db.session.scalars(
                update(_T)
                .where(_T.c.id.in_(ids[start:start + 500]), _T.c.leased_by == token, _T.c.status == DeliveryStatus.SENDING.value)
                .values(status=status.value, next_attempt_at=next_at or at, sent_at=sent_at, last_error=error and error[:500],
                        last_status_code=code, leased_by=None, lease_until=None, updated_at=at)
                .returning(_T.c.id)
            ))
    if len(held) < len(results):
        log.warning("ignored %d results of claim %s: taken back meanwhile", len(results) - len(held), token)
    # a recipient that is gone is disabled and alerted about on its own: no second alert for its message
    dead = [outgoing.id for outgoing, result in results if outgoing.id in held
            and _outcome(outgoing, result, at)[0] == DeliveryStatus.DEAD and not (isinstance(result, Failed) and result.gone)]
    if dead:
        _alert_dead(dead)
    endpoint_results = [
        (outgoing.recipient.endpoint_id, result) for outgoing, result in results
        if outgoing.id in held and getattr(outgoing.recipient, "endpoint_id", None) is not None
    ]
    if endpoint_results:
        from scheduler.channels.health import record_endpoint_results

        record_endpoint_results(endpoint_results, at)


def _alert_dead(ids: list[str]) -> None:
    """Tell each owning organization how many of its deliveries gave up (one alert per round)."""
    from scheduler.alerts.operations import raise_alert
    from scheduler.channels.models import WebhookEndpoint
    from scheduler.events.models import Event

    owners = db.session.execute(
        select(func.coalesce(WebhookEndpoint.org_id, Event.org_id), func.count())
        .select_from(_T).outerjoin(WebhookEndpoint, WebhookEndpoint.id == _T.c.endpoint_id)
        .outerjoin(Event, Event.id == _T.c.event_id).where(_T.c.id.in_(ids)).group_by(func.coalesce(WebhookEndpoint.org_id, Event.org_id))
    ).all()
    for org_id, count in owners:
        if org_id is not None:
            raise_alert(org_id, "delivery.dead", f"{count} 条消息多次发送失败，已放弃。{count} deliveries gave up after their retries: "
                        "see GET /api/v1/deliveries?status=dead, fix the cause, and replay them.", subject="deliveries:dead")


def _outcome(outgoing: Outgoing, result: Result, at: dt.datetime) -> tuple[DeliveryStatus, dt.datetime | None, dt.datetime | None, str | None, int | None]:
    """(status, next attempt, sent at, error, status code) of one result under the channel's policy."""
    if isinstance(result, Sent):
        return DeliveryStatus.SENT, None, at, None, result.status_code
    if isinstance(result, Unknown):
        return DeliveryStatus.UNKNOWN, None, None, result.reason, None
    if isinstance(result, Failed):
        return DeliveryStatus.DEAD, None, None, result.reason, result.status_code
    next_at = policy.next_attempt_at(outgoing.channel, outgoing.attempt, at, result.not_before)
    if next_at is None:
        return DeliveryStatus.DEAD, None, None, f"Gave up after {outgoing.attempt} attempts: {result.reason}", result.status_code
    return DeliveryStatus.RETRYING, next_at, None, result.reason, result.status_code


def release(token: str, ids: list[str], at: dt.datetime | None = None) -> None:
    """Give back claimed deliveries that were never sent (a sender stopping); flush."""
    if ids:
        at = at or now()
        db.session.execute(
            update(_T)
            .where(_T.c.id.in_(ids), _T.c.leased_by == token, _T.c.status == DeliveryStatus.SENDING.value)
            .values(status=case((_T.c.attempts > 1, DeliveryStatus.RETRYING.value), else_=DeliveryStatus.PENDING.value),
                    attempts=_T.c.attempts - 1, leased_by=None, lease_until=None, next_attempt_at=at, updated_at=at)
        )


def renew_leases(tokens: set[str], at: dt.datetime | None = None) -> None:
    """Keep the claims of a live sender (its queued and in-flight deliveries) from running out; flush."""
    if tokens:
        at = at or now()
        db.session.execute(
            update(_T).where(_T.c.leased_by.in_(tokens), _T.c.status == DeliveryStatus.SENDING.value)
            .values(lease_until=at + policy.lease())
        )


def reclaim_expired_leases(at: dt.datetime | None = None) -> int:
    """Take back claims whose holder died: tried again, or ``unknown`` where a repeat could double a message."""
    at = at or now()
    stale = db.session.execute(
        select(_T.c.id, _T.c.channel).where(_T.c.status == DeliveryStatus.SENDING.value, _T.c.lease_until < at)
        .with_for_update(skip_locked=True)
    ).all()
    for channel in {row.channel for row in stale}:
        ids = [row.id for row in stale if row.channel == channel]
        becomes = policy.RECLAIMED_AS.get(channel, DeliveryStatus.RETRYING.value)
        db.session.execute(
            update(_T).where(_T.c.id.in_(ids), _T.c.status == DeliveryStatus.SENDING.value)
            .values(status=becomes, leased_by=None, lease_until=None, next_attempt_at=at, updated_at=at,
                    last_error="The sender holding it stopped before recording a result.")
        )
    if stale:
        log.warning("took back %d deliveries whose sender stopped", len(stale))
    return len(stale)


def run_once(at: dt.datetime | None = None, batch: int = 100) -> int:
    """Send everything due now, in this thread, committing as it goes; returns how many were sent or tried.

    What the background senders do, without threads: for tests, the CLI and replays.
    """
    total = 0
    while True:
        taken = claim(batch, at=at)
        db.session.commit()
        if not taken.claimed:
            return total
        record(taken.token, [pair for batch in batches(taken.outgoing) for pair in zip(batch, send_batch(batch))], at=at)
        db.session.commit()
        total += len(taken.outgoing)
