"""The delivery log is kept DELIVERY_RETENTION_DAYS: finished deliveries older than that go,
with the messages nobody uses any more; nothing still waiting or in flight is ever touched."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from scheduler.channels.operations import create_endpoint, ping
from scheduler.channels.sms.models import SmsDailyCount
from scheduler.extensions import db
from scheduler.reminders import engine
from scheduler.reminders.models import Delivery, OutboxMessage
from scheduler.reminders.retention import purge
from tests.conftest import NOW
from tests.factories import create_city


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def endpoint(ctx):
    return create_endpoint(create_city()["xinhui"], "https://partner.example/hook")


def queued(endpoint, status: str, days_ago: float) -> str:
    """A ping delivery in ``status``, last changed ``days_ago`` days before NOW."""
    delivery_id = ping(endpoint)
    db.session.flush()
    db.session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
        status=status, updated_at=NOW - dt.timedelta(days=days_ago), created_at=NOW - dt.timedelta(days=days_ago)))
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == db.session.get(Delivery, delivery_id).message_id)
                       .values(created_at=NOW - dt.timedelta(days=days_ago)))
    db.session.commit()
    return delivery_id


def test_finished_deliveries_past_keeping_go_and_waiting_ones_stay(app, endpoint):
    old = {status: queued(endpoint, status, 200) for status in ("sent", "dead", "expired", "cancelled", "unknown")}
    waiting = {status: queued(endpoint, status, 400) for status in ("pending", "retrying", "sending")}
    recent = queued(endpoint, "sent", 10)
    assert count(OutboxMessage) == 9

    purged = purge()  # 180 days by default
    db.session.expire_all()
    assert (purged.deliveries, purged.messages) == (5, 5)
    left = set(db.session.scalars(select(Delivery.id)))
    assert left == set(waiting.values()) | {recent} and not left & set(old.values())
    assert count(OutboxMessage) == 4  # the messages of what is left

    assert purge(days=5).deliveries == 1  # a shorter keeping, by hand (flask deliveries purge --days 5)
    assert purge(days=0).deliveries == 0  # 0 keeps everything


def test_a_message_still_used_by_a_recent_delivery_stays(app, endpoint):
    first = queued(endpoint, "sent", 200)
    message_id = db.session.get(Delivery, first).message_id
    second = ping(endpoint)
    db.session.execute(update(Delivery).where(Delivery.id == second).values(message_id=message_id, status="sent"))
    db.session.commit()
    purge()
    db.session.expire_all()
    assert db.session.get(Delivery, first) is None and db.session.get(OutboxMessage, message_id) is not None


def test_daily_text_counts_are_kept_a_month(app, ctx):
    today = NOW.date()
    for days in (0, 30, 32, 400):
        db.session.add(SmsDailyCount(phone_hash="f" * 64, day=today - dt.timedelta(days=days), count=1))
    db.session.commit()
    assert purge().sms_counts == 2
    assert sorted(db.session.scalars(select(SmsDailyCount.day))) == [today - dt.timedelta(days=30), today]


def test_the_nightly_job_and_the_command_purge(app, endpoint, runner):
    queued(endpoint, "sent", 200)
    engine._app = app
    engine.purge_job()  # its own application context, like the scheduler's thread
    db.session.expire_all()
    assert count(Delivery) == 0
    queued(endpoint, "dead", 20)
    result = runner.invoke(args=["deliveries", "purge", "--days", "7"])
    assert result.exit_code == 0 and "Deleted 1 deliveries, 1 messages" in result.output
    db.session.expire_all()
    assert count(Delivery) == 0
