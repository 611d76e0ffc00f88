"""The SMS channel: texts to registrants through the configured provider, within the rules.

When claimed (:meth:`SmsChannel.recipients`), each delivery is checked: the registration
still holds a seat (or, for a cancellation or a move, still waits for one) and wants texts,
the number has not opted out, it is a mainland mobile number (domestic providers), the hour
is not quiet, and the number is under its daily cap; otherwise it is cancelled or held back
(``Defer``, not an attempt). Texts with the same wording go in one request, up to the
provider's batch size. A timeout after the request went out is ``unknown``: never re-sent
blindly.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from scheduler.channels.base import Defer, Failed, Outgoing, Result, Retry, Sent, Skip, Unknown
from scheduler.channels.sms.base import SmsMessage, SmsProvider, provider_from_config
from scheduler.channels.sms.choices import opted_out
from scheduler.channels.sms.links import manage_url
from scheduler.channels.sms.models import SmsDailyCount
from scheduler.channels.sms.rules import DOMESTIC_PROVIDERS, is_mainland_mobile, local_day, next_morning, send_time
from scheduler.channels.sms.templates import Rendered, local_time, render
from scheduler.events.kinds import CONTEST_STAGES
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.phone import mask_phone
from scheduler.util.time import now

#: Message type of a delivery → the approved template it is sent with.
TEMPLATE_OF = {"reminder.due": "reminder", "event.cancelled": "cancellation", "event.updated": "change",
               "registration.promoted": "promotion"}
#: Message types that also go to people on the waitlist (they are told of a cancellation or a
#: move, as :func:`scheduler.events.operations._tell_participants` queues them); the rest need a seat.
#: The place parameter of an event without a venue or address (providers refuse empty parameters).
PLACE_UNKNOWN = "详见活动页面"
WAITLIST_TOO = {"event.cancelled", "event.updated"}


@dataclass(frozen=True)
class SmsTarget:
    """Who a text goes to, and through what."""

    registration_id: int
    phone: str
    link: str
    provider: SmsProvider
    sign: str


def provider() -> SmsProvider:
    """The application's provider (built once from its settings)."""
    built = current_app.extensions.get("sms_provider")
    if built is None:
        built = current_app.extensions["sms_provider"] = provider_from_config(current_app.config)
    return built


def _take_daily_slots(session: Session, phones: list[str], at: dt.datetime, cap: int) -> Counter[str]:
    """Count the texts about to go to each number today, up to ``cap``; how many each may send
    (``phones``: the numbers' keyed hashes).

    One statement for the numbers that appear once (the usual fan-out), one each for the
    few that appear more often (an upsert cannot touch the same row twice).
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = SmsDailyCount.__table__
    stmt = insert(table).on_conflict_do_update(
        index_elements=["phone_hash", "day"], set_={"count": table.c.count + 1}, where=table.c.count < cap
    ).returning(table.c.phone_hash)
    wanted, granted, day = Counter(phones), Counter[str](), local_day(at)
    once = [{"phone_hash": phone, "day": day, "count": 1} for phone, times in wanted.items() if times == 1]
    if once:
        granted.update(session.scalars(stmt, once))
    for phone, times in wanted.items():
        for _ in range(times if times > 1 else 0):
            granted.update(session.scalars(stmt.values(phone_hash=phone, day=day, count=1)))
    return granted


def _stage(outgoing: Outgoing) -> dict[str, str] | None:
    """The contest stage a reminder is ahead of (``{"key", "at"}``), or ``None`` (ahead of the start)."""
    if outgoing.type != "reminder.due":
        return None
    stage = outgoing.payload["data"].get("reminder", {}).get("stage")
    return stage if stage and stage.get("key") in CONTEST_STAGES else None


def template_of(outgoing: Outgoing) -> str:
    """Which approved template a delivery's text uses."""
    return "stage" if _stage(outgoing) else TEMPLATE_OF.get(outgoing.type, "reminder")


def render_text(outgoing: Outgoing, target: SmsTarget) -> Rendered:
    """The text of one delivery, from its stored message (the same wording the template was approved with)."""
    data = outgoing.payload["data"]
    event, reminder = data["event"], data.get("reminder", {})
    tz = event["timezone"]
    start = dt.datetime.fromisoformat(reminder.get("occurrence_start") or event["starts_at"])
    stage = _stage(outgoing)
    if stage:
        start = dt.datetime.fromisoformat(stage["at"])
    meeting = reminder.get("meeting")
    params = {
        "stage": CONTEST_STAGES[stage["key"]][0] if stage else "",
        "title": event["title"],
        "time": local_time(start, tz),
        "place": event.get("venue") or event.get("address") or PLACE_UNKNOWN,
        "meeting": f"，集合：{local_time(dt.datetime.fromisoformat(meeting['time']), tz)} {meeting['point']}" if meeting else "",
        "reason": f"，原因：{event['cancel_reason']}" if event.get("cancel_reason") else "",
        "change": data.get("change", ""),
        "link": target.link,
    }
    return render(template_of(outgoing), params, sign=target.sign)


def why_not_texted(registration: Any, wanted: tuple[str, ...], stopped: set[str], provider_name: str) -> str | None:
    """Why ``registration`` (a row with ``status``, ``channels``, ``phone``; or ``None``) gets no text,
    or ``None`` when it gets one: it must be in a ``wanted`` status, have chosen texts, not have
    stopped them (``stopped``: the numbers that did), and be reachable by the provider."""
    if registration is None or registration.status not in wanted or "sms" not in (registration.channels or []):
        return "The registration no longer holds a seat or wants texts."
    if registration.phone in stopped:
        return "The number asked for no more texts."
    if provider_name in DOMESTIC_PROVIDERS and not is_mainland_mobile(registration.phone):
        return f"{mask_phone(registration.phone)} is not a mainland mobile number ({provider_name} sends to those only)."
    return None


class SmsChannel:
    """Texts to registrants (deliveries whose recipient is ``registration:<id>``)."""

    name = "sms"

    @property
    def batch_size(self) -> int:
        """As many numbers as the provider takes in one request."""
        return provider().batch_size

    def recipients(self, session: Session, deliveries: list[Any]) -> dict[str, Any]:
        """Each delivery's number and link, or why it is cancelled (``Skip``) or held back (``Defer``)."""
        at, config, chosen = now(), current_app.config, provider()
        cap = int(config.get("SMS_DAILY_CAP", 5))
        sign = config.get("SMS_SIGN_NAME") or "江门科技"
        rows = {r.id: r for r in session.execute(
            select(Registration.id, Registration.phone, Registration.phone_hash, Registration.status, Registration.channels)
            .where(Registration.id.in_({d.registration_id for d in deliveries}))
        )}
        stopped = opted_out({r.phone for r in rows.values()})
        found: dict[str, Any] = {}
        ready = []
        for delivery in deliveries:
            row = rows.get(delivery.registration_id)
            wanted = (RegistrationStatus.REGISTERED, RegistrationStatus.WAITLISTED) if delivery.type in WAITLIST_TOO \
                else (RegistrationStatus.REGISTERED,)
            refused = why_not_texted(row, wanted, stopped, chosen.name)
            if refused:
                found[delivery.id] = Skip(refused)
            elif (allowed := send_time(at, delivery.not_after, now=at)) > at:
                found[delivery.id] = Defer(allowed, "Quiet hours: texts go between 08:00 and 21:00.")
            else:
                ready.append((delivery, row))
        slots = _take_daily_slots(session, [row.phone_hash for _, row in ready], at, cap)
        for delivery, row in ready:
            if slots[row.phone_hash] > 0:
                slots[row.phone_hash] -= 1
                found[delivery.id] = SmsTarget(row.id, row.phone, manage_url(row.id), chosen, sign)
            else:
                found[delivery.id] = Defer(send_time(next_morning(at), delivery.not_after), f"The number had its {cap} texts today.")
        return found

    def batch_key(self, outgoing: Outgoing) -> Any:
        """Which texts share a request (``None``: the provider sends one at a time).

        A provider taking a different text per number in one request (``per_number_text``)
        batches every text of the same template, personal links and all; others batch texts
        with the same wording only (template and parameters).
        """
        target: SmsTarget = outgoing.recipient
        if target.provider.batch_size <= 1:
            return None
        if getattr(target.provider, "per_number_text", False):
            return template_of(outgoing)
        text = render_text(outgoing, target)
        return (text.template, tuple(sorted(text.params.items())))

    def send(self, outgoing: Outgoing) -> Result:
        """Send one text."""
        return self.send_many([outgoing])[0]

    def send_many(self, batch: list[Outgoing]) -> list[Result]:
        """Send texts of the same wording in one request; one result each."""
        target: SmsTarget = batch[0].recipient
        messages = []
        for outgoing in batch:
            text = render_text(outgoing, outgoing.recipient)
            messages.append(SmsMessage(outgoing.id, outgoing.recipient.phone, text.template, text.params, text.text))
        by_id = {outcome.id: outcome for outcome in target.provider.send(messages)}
        return [_result(by_id.get(outgoing.id)) for outgoing in batch]


def _result(outcome: Any) -> Result:
    if outcome is None:
        return Unknown("The provider said nothing of this text.")
    if outcome.status == "sent":
        return Sent()
    if outcome.status == "unknown":
        return Unknown(outcome.reason)
    if outcome.status == "failed":
        return Failed(outcome.reason)
    not_before = now() + dt.timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
    return Retry(outcome.reason, not_before=not_before)
