"""People's choices about texts (flush, never commit): stop for one event, stop all, start again."""
from __future__ import annotations

import re

from sqlalchemy import select

from scheduler.channels.sms.models import SmsChoice
from scheduler.extensions import db
from scheduler.registrations.models import Registration
from scheduler.util.phone import phone_key
from scheduler.util.time import now

#: Replies that mean "no more texts" (TD = 退订, T, R = refuse), as Chinese carriers use them.
STOP_WORDS = {"TD", "T", "R", "N", "退订", "退", "取消", "STOP", "UNSUBSCRIBE"}
_NOISE = re.compile(r"[\s\u3000。.!！,，]+")


def opted_out(phones: set[str]) -> set[str]:
    """The numbers among ``phones`` whose latest choice is to get no texts."""
    by_hash = {phone_key(phone): phone for phone in phones if phone}
    return {by_hash[key] for key in opted_out_hashes(set(by_hash))}


def opted_out_hashes(hashes: set[str]) -> set[str]:
    """The numbers' keyed hashes (:func:`~scheduler.util.phone.phone_key`) among ``hashes`` whose
    latest choice is to get no texts."""
    if not hashes:
        return set()
    latest: dict[str, bool] = {}
    rows = db.session.execute(
        select(SmsChoice.phone_hash, SmsChoice.opted_out).where(SmsChoice.phone_hash.in_(hashes))
        .order_by(SmsChoice.created_at, SmsChoice.id)
    )
    for key, out in rows:
        latest[key] = out
    return {key for key, out in latest.items() if out}


def record_choice(phone: str, opted_out: bool, source: str, detail: str = "") -> SmsChoice:
    """Keep a number's choice (by its keyed hash), with when and how it was made."""
    return record_hashed_choice(phone_key(phone), opted_out, source, detail)


def record_hashed_choice(phone_hash: str, opted_out: bool, source: str, detail: str = "") -> SmsChoice:
    """Keep the choice of the number whose keyed hash is ``phone_hash``."""
    choice = SmsChoice(phone_hash=phone_hash, opted_out=opted_out, source=source, detail=detail[:100], created_at=now())
    db.session.add(choice)
    db.session.flush()
    return choice


def is_stop_reply(text: str) -> bool:
    """Whether a reply to a text asks for no more (``TD``, ``t``, ``退订。``, ...)."""
    return _NOISE.sub("", text).upper() in STOP_WORDS


def stop_for_event(registration: Registration) -> None:
    """No more texts about this registration's event (other channels stay)."""
    registration.channels = [c for c in registration.channels if c != "sms"]
    db.session.flush()


def resume_for_event(registration: Registration) -> None:
    """Texts about this event again."""
    if "sms" not in registration.channels:
        registration.channels = [*registration.channels, "sms"]
    db.session.flush()
