"""How long participants' personal data is kept (PIPL: no longer than the purpose needs).

:func:`purge_personal_data`, run nightly at 03:40 (``flask privacy purge`` by hand):

* **registrations** of events whose last occurrence ended more than
  ``REGISTRATION_RETENTION_DAYS`` ago (365 by default; 0 keeps them for ever), whatever their
  status, are anonymized as :func:`scheduler.registrations.operations.anonymize` does it: the
  name, the number and its keyed hash go, every private link dies, ``anonymized_at`` is set. The
  rows stay, so seat counts, check-ins and the events' outcomes stay right;
* **personal calendars** whose number (keyed hash) no registration has any more are deleted;
* **phone verifications** whose code and session (if any) have both expired are deleted;
* **text choices** (``sms_choices``, keyed hashes only): each number keeps only its latest choice,
  and only if it is an opt-out (no row means texts are allowed, the default). Superseded choices
  older than the cut-off go, then latest opt-ins older than it (in that order: deleting a latest
  opt-in before the opt-out it replaced would bring the opt-out back).

Work goes in batches of :data:`BATCH` rows, each its own transaction (as
:mod:`scheduler.reminders.retention`). A run that changed something is recorded once in the audit
log (actor ``system``, action ``privacy.purge``, the counts). The outbox needs nothing here: what
is queued for a participant holds the event only (the number is read from the registration when
the text goes), and delivery rows are kept ``DELIVERY_RETENTION_DAYS``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, String, and_, cast, delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import aliased

from scheduler.audit.operations import record
from scheduler.channels.sms.models import SmsChoice
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.privacy.models import PhoneVerification
from scheduler.registrations.models import Registration
from scheduler.reminders.retention import cutoff
from scheduler.util.time import now

BATCH = 5000
#: What an anonymized registration's ``token_hash`` starts with: never a SHA-256 in hex, so no
#: token opens it (the column is unique and required, so each row gets its id after it).
GONE_TOKEN_PREFIX = "anonymized:"


@dataclass(frozen=True)
class PrivacyPurged:
    """What one run anonymized or deleted (or, in a dry run, would)."""

    registrations: int
    calendars: int
    verifications: int
    sms_choices: int

    @property
    def total(self) -> int:
        """Rows changed in all."""
        return self.registrations + self.calendars + self.verifications + self.sms_choices


def anonymized_values(moment: dt.datetime) -> dict[str, object]:
    """The columns :func:`~scheduler.registrations.operations.anonymize` changes, as one bulk
    ``UPDATE`` sets them (``tests/test_privacy_retention.py`` checks the two agree)."""
    return {
        "name": None, "phone": None, "phone_hash": None, "calendar_token_hash": None, "channels": [],
        "token_hash": literal(GONE_TOKEN_PREFIX) + cast(Registration.id, String),
        "anonymized_at": moment,
    }


def _expired_registrations(before: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    ended = select(Event.id).where(Event.last_ends_at < before)
    return Registration.event_id.in_(ended), Registration.anonymized_at.is_(None)


def _orphan_calendars(before: dt.datetime | None = None) -> ColumnElement[bool]:
    """Calendars no registration has the number of (or, given ``before``, none that is kept)."""
    kept = () if before is None else (Registration.event_id.not_in(select(Event.id).where(Event.last_ends_at < before)),)
    return ~exists().where(Registration.phone_hash == PersonalCalendar.phone_hash, *kept)


def _spent_verifications(at: dt.datetime) -> ColumnElement[bool]:
    return and_(
        PhoneVerification.expires_at < at,
        or_(PhoneVerification.session_until.is_(None), PhoneVerification.session_until < at),
    )


def _superseded_choices(before: dt.datetime) -> ColumnElement[bool]:
    """Choices older than ``before`` that a later choice of the same number replaced (the order
    :func:`scheduler.channels.sms.choices.opted_out_hashes` reads: ``created_at``, then ``id``)."""
    newer = aliased(SmsChoice)
    return and_(SmsChoice.created_at < before, exists().where(
        newer.phone_hash == SmsChoice.phone_hash,
        or_(newer.created_at > SmsChoice.created_at, and_(newer.created_at == SmsChoice.created_at, newer.id > SmsChoice.id)),
    ))


def _stale_opt_ins(before: dt.datetime) -> ColumnElement[bool]:
    """Latest choices that are opt-ins (the default anyway), older than ``before``."""
    newer = aliased(SmsChoice)
    return and_(SmsChoice.opted_out.is_(False), SmsChoice.created_at < before, ~exists().where(
        newer.phone_hash == SmsChoice.phone_hash,
        or_(newer.created_at > SmsChoice.created_at, and_(newer.created_at == SmsChoice.created_at, newer.id > SmsChoice.id)),
    ))


def _count(query: Select[tuple[int]]) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _delete_in_batches(model: Any, where: ColumnElement[bool]) -> int:
    """Delete ``model`` rows matching ``where``, :data:`BATCH` at a time, committing each batch."""
    done = 0
    batch = select(model.id).where(where).limit(BATCH)
    # ``where`` again on the DELETE itself: PostgreSQL re-checks it on a row changed meanwhile
    while count := db.session.execute(delete(model).where(model.id.in_(batch), where)).rowcount:
        db.session.commit()
        done += count
    return done


def _anonymize_in_batches(before: dt.datetime) -> int:
    done = 0
    expired = _expired_registrations(before)
    batch = select(Registration.id).where(*expired).limit(BATCH)
    while count := db.session.execute(
        update(Registration).where(Registration.id.in_(batch), *expired).values(**anonymized_values(now()))
        .execution_options(synchronize_session=False)
    ).rowcount:
        db.session.commit()
        done += count
    return done


def purge_personal_data(at: dt.datetime | None = None, days: int | None = None, *, dry_run: bool = False) -> PrivacyPurged:
    """Anonymize and delete what is past keeping (committing each batch); what was changed.

    ``days`` defaults to ``REGISTRATION_RETENTION_DAYS`` (0: registrations and text choices are
    kept for ever; spent verifications and calendars without registrations still go). A
    ``dry_run`` counts what would change and changes nothing.
    """
    at = at or now()
    days = current_app.config["REGISTRATION_RETENTION_DAYS"] if days is None else days
    before = cutoff(at, days)
    if dry_run:
        return PrivacyPurged(
            registrations=_count(select(Registration.id).where(*_expired_registrations(before))) if before else 0,
            calendars=_count(select(PersonalCalendar.id).where(_orphan_calendars(before))),  # as after the anonymizing
            verifications=_count(select(PhoneVerification.id).where(_spent_verifications(at))),
            sms_choices=(_count(select(SmsChoice.id).where(_superseded_choices(before)))
                         + _count(select(SmsChoice.id).where(_stale_opt_ins(before)))) if before else 0,
        )
    registrations = _anonymize_in_batches(before) if before else 0
    # after the registrations: a number whose last registration was just anonymized loses its calendar tonight
    calendars = _delete_in_batches(PersonalCalendar, _orphan_calendars())
    verifications = _delete_in_batches(PhoneVerification, _spent_verifications(at))
    sms_choices = 0
    if before:
        sms_choices = _delete_in_batches(SmsChoice, _superseded_choices(before))  # first: see the module's docstring
        sms_choices += _delete_in_batches(SmsChoice, _stale_opt_ins(before))
    purged = PrivacyPurged(registrations, calendars, verifications, sms_choices)
    if purged.total:
        record("privacy.purge", "retention", actor="system", detail={**asdict(purged), "days": days})
    db.session.commit()
    return purged
