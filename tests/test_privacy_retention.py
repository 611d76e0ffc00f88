"""Participants' data is kept REGISTRATION_RETENTION_DAYS after their event: then registrations are
anonymized (counts and check-ins stay), calendars without registrations, spent verification codes
and text choices nobody needs any more go; an opt-out survives as a keyed hash only."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from scheduler.audit.models import AuditEntry
from scheduler.channels.sms.choices import opted_out_hashes
from scheduler.channels.sms.models import SmsChoice
from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.privacy.models import PhoneVerification
from scheduler.privacy.retention import purge_personal_data
from scheduler.registrations import operations as registration_ops
from scheduler.registrations.models import Registration
from scheduler.reminders import engine
from scheduler.reminders.dispatch import queue_participant_message
from scheduler.reminders.models import OutboxMessage
from scheduler.util.ids import hash_secret, new_secret, new_ulid
from scheduler.util.phone import phone_key
from scheduler.util.time import now
from tests.factories import CST, create_city, create_event

#: A year and a day after the default event of the factories (2024-06-22, 09:00-12:00).
YEAR_LATER = dt.datetime(2024, 6, 23, 12, 30, tzinfo=CST) + dt.timedelta(days=365)


def add_registration(event, phone: str = "+8613800138000", *, name: str = "张三", status: str = "registered",
                     created_at: dt.datetime | None = None) -> tuple[Registration, str]:
    """A registration inserted as a row (the public flow is being changed elsewhere); with its token."""
    moment = created_at or now()
    token = new_secret("r_", 24)
    registration = Registration(
        event_id=event.id, name=name, phone=phone, phone_hash=phone_key(phone), channels=["sms"], status=status,
        token_hash=hash_secret(token), created_at=moment, seated_at=moment if status == "registered" else None,
        cancelled_at=moment if status == "cancelled" else None,
        calendar_token_hash=hash_secret(new_secret("c_", 24)),
    )
    db.session.add(registration)
    db.session.commit()
    return registration, token


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def personal(registration: Registration) -> tuple:
    db.session.refresh(registration)
    return registration.name, registration.phone, registration.phone_hash


@pytest.fixture
def city(ctx):
    return create_city()


def test_registrations_a_year_after_their_event_are_anonymized_and_counts_stay(app, city, clock):
    old = create_event(city["xinhui"], publish=True, capacity=1)
    later = create_event(city["xinhui"], publish=True, starts_at=dt.datetime(2024, 8, 1, 9, tzinfo=CST),
                         ends_at=dt.datetime(2024, 8, 1, 12, tzinfo=CST))
    seated, token = add_registration(old, "+8613800138000")
    waiting, _ = add_registration(old, "+8613900139000", name="李四", status="waitlisted")
    gone, _ = add_registration(old, "+8613700137000", name="王五", status="cancelled")
    kept, _ = add_registration(later, "+8613800138000")
    clock.set(dt.datetime(2024, 6, 22, 9, 30, tzinfo=CST))
    registration_ops.check_in(seated)
    db.session.commit()
    counts = registration_ops.seat_counts([old.id])

    clock.set(YEAR_LATER)
    purged = purge_personal_data()  # 365 days by default
    db.session.expire_all()

    assert purged.registrations == 3
    for registration in (seated, waiting, gone):
        assert personal(registration) == (None, None, None)
        assert registration.channels == [] and registration.calendar_token_hash is None
        assert registration.anonymized_at == YEAR_LATER
    assert (seated.status, waiting.status, gone.status) == ("registered", "waitlisted", "cancelled")
    assert seated.checked_in_at is not None and gone.cancelled_at is not None
    assert registration_ops.seat_counts([old.id]) == counts
    assert registration_ops.get_by_token(token) is None  # the private link opens nothing any more
    assert personal(kept) == ("张三", "+8613800138000", phone_key("+8613800138000"))  # its event ended 40 days later

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.purge")).one()
    assert entry.actor == "system" and entry.detail["registrations"] == 3 and entry.detail["days"] == 365
    assert purge_personal_data().total == 0  # nothing left to do: no second entry
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "privacy.purge")) == 1


def test_the_bulk_update_does_what_anonymize_does(app, city, clock):
    """The purge anonymizes thousands at once with one UPDATE; it must change the same columns
    the same way as :func:`scheduler.registrations.operations.anonymize` (a new column that one
    clears and the other not fails here)."""
    event = create_event(city["xinhui"], publish=True)
    moment = now()
    one, _ = add_registration(event, "+8613800138000", created_at=moment)
    other, _ = add_registration(event, "+8613900139000", created_at=moment)
    columns = [c.key for c in Registration.__mapper__.column_attrs]
    before = {r.id: {c: getattr(r, c) for c in columns} for r in (one, other)}
    clock.set(YEAR_LATER)
    registration_ops.anonymize(one)
    db.session.commit()
    assert purge_personal_data().registrations == 1  # the other one
    db.session.expire_all()
    after = {r.id: {c: getattr(r, c) for c in columns} for r in (one, other)}
    changed = {i: {c for c in columns if after[i][c] != before[i][c]} for i in after}
    assert changed[one.id] == changed[other.id]
    assert {c: v for c, v in after[one.id].items() if c not in ("id", "token_hash")} == \
           {c: v for c, v in after[other.id].items() if c not in ("id", "token_hash")}


def test_keeping_for_ever_a_shorter_keeping_and_a_dry_run(app, city, clock, runner):
    event = create_event(city["xinhui"], publish=True)
    registration, _ = add_registration(event)
    clock.set(YEAR_LATER + dt.timedelta(days=3650))
    assert purge_personal_data(days=0).registrations == 0  # 0 keeps them for ever

    clock.set(dt.datetime(2024, 7, 10, tzinfo=CST))
    dry = runner.invoke(args=["privacy", "purge", "--days", "7", "--dry-run"])
    assert dry.exit_code == 0 and "Dry run: would anonymize 1 registrations" in dry.output
    assert personal(registration)[0] == "张三" and count(AuditEntry) == 0

    result = runner.invoke(args=["privacy", "purge", "--days", "7"])
    assert result.exit_code == 0 and "Anonymized 1 registrations" in result.output
    assert personal(registration) == (None, None, None)


def test_calendars_without_registrations_go(app, city, clock):
    event = create_event(city["xinhui"], publish=True)
    later = create_event(city["xinhui"], publish=True, starts_at=dt.datetime(2024, 9, 1, 9, tzinfo=CST),
                         ends_at=dt.datetime(2024, 9, 1, 12, tzinfo=CST))
    add_registration(event, "+8613800138000")  # their only registration: anonymized tonight
    add_registration(later, "+8613900139000")  # still registered
    for phone in ("+8613800138000", "+8613900139000", "+8613700137000"):  # the last: no registration at all
        db.session.add(PersonalCalendar(phone_hash=phone_key(phone), token_hash=hash_secret(phone)))
    db.session.commit()

    clock.set(YEAR_LATER)
    assert purge_personal_data(dry_run=True).calendars == 2  # counting the one tonight's anonymizing leaves alone
    assert purge_personal_data().calendars == 2
    assert list(db.session.scalars(select(PersonalCalendar.phone_hash))) == [phone_key("+8613900139000")]


def test_spent_verification_codes_go(app, ctx, clock):
    at = now()

    def verification(expires: dt.timedelta, session: dt.timedelta | None = None) -> str:
        row = PhoneVerification(id=new_ulid(), phone_hash=phone_key("+8613800138000"), code_hash="x" * 64,
                                created_at=at - dt.timedelta(hours=2), expires_at=at + expires,
                                session_until=at + session if session is not None else None)
        db.session.add(row)
        db.session.commit()
        return row.id

    unused_expired = verification(-dt.timedelta(minutes=1))
    both_over = verification(-dt.timedelta(hours=1), -dt.timedelta(minutes=1))
    still_signed_in = verification(-dt.timedelta(hours=1), dt.timedelta(minutes=20))
    code_still_valid = verification(dt.timedelta(minutes=5))
    assert purge_personal_data().verifications == 2
    left = set(db.session.scalars(select(PhoneVerification.id)))
    assert left == {still_signed_in, code_still_valid} and not left & {unused_expired, both_over}


def test_only_each_numbers_latest_opt_out_survives(app, city, clock):
    at = now()

    def choices(phone: str, *history: tuple[bool, int]) -> str:
        for opted_out, days_ago in history:
            db.session.add(SmsChoice(phone_hash=phone_key(phone), opted_out=opted_out, source="link",
                                     created_at=at - dt.timedelta(days=days_ago)))
        db.session.commit()
        return phone_key(phone)

    out_in_out = choices("+8613800000001", (True, 400), (False, 390), (True, 380))  # keeps the last opt-out
    out_then_in = choices("+8613800000002", (True, 400), (False, 380))  # nothing: no row means texts allowed
    recent_in = choices("+8613800000003", (True, 400), (False, 10))  # the recent opt-in stays
    recent_out = choices("+8613800000004", (False, 400), (True, 10))
    lone_out = choices("+8613800000005", (True, 900))  # an opt-out stays for ever
    numbers = {out_in_out, out_then_in, recent_in, recent_out, lone_out}
    stopped = opted_out_hashes(numbers)

    assert purge_personal_data(dry_run=True).sms_choices == 2 + 2 + 1 + 1
    assert purge_personal_data().sms_choices == 2 + 2 + 1 + 1
    assert opted_out_hashes(numbers) == stopped == {out_in_out, recent_out, lone_out}  # nobody's choice changed
    left = db.session.execute(select(SmsChoice.phone_hash, SmsChoice.opted_out).order_by(SmsChoice.id)).all()
    assert sorted(left) == sorted([(out_in_out, True), (recent_in, False), (recent_out, True), (lone_out, True)])
    assert purge_personal_data(days=0).sms_choices == 0


def test_the_nightly_job_purges(app, city, clock):
    event = create_event(city["xinhui"], publish=True)
    registration, _ = add_registration(event)
    clock.set(YEAR_LATER)
    engine._app = app
    engine.privacy_purge_job()  # its own application context, like the scheduler's thread
    db.session.expire_all()
    assert personal(registration) == (None, None, None)


def test_what_is_queued_for_a_participant_holds_no_name_or_number(app, city):
    """Anonymizing needs nothing in the outbox: its messages hold the event only, and the number
    is read from the registration when the text goes (deliveries are kept 180 days)."""
    event = create_event(city["xinhui"], publish=True)
    registration, _ = add_registration(event, "+8613800138000", name="张三")
    assert queue_participant_message(event, "registration.promoted", [registration]) == 1
    db.session.commit()
    stored = json.dumps([m.payload for m in db.session.scalars(select(OutboxMessage))], ensure_ascii=False)
    assert "张三" not in stored and "13800138000" not in stored and "138****" not in stored
