"""Reminder plans follow their events: defaults per kind, moves, cancellations, series."""
import datetime as dt

import pytest
from sqlalchemy import select

from scheduler.events import operations as ops
from scheduler.extensions import db
from scheduler.reminders.models import Reminder
from scheduler.reminders.plan import next_due
from tests.factories import CST, create_event, create_org


@pytest.fixture
def org(ctx):
    return create_org("wyu")


def plan(event) -> dict[tuple[dt.datetime, str], tuple[dt.datetime, str]]:
    rows = db.session.scalars(select(Reminder).where(Reminder.event_id == event.id))
    return {(r.occurrence_start.astimezone(CST), r.offset): (r.scheduled_at.astimezone(CST), r.status) for r in rows}


def pending(event) -> list[tuple[str, dt.datetime]]:
    return sorted((offset, when) for (_, offset), (when, status) in plan(event).items() if status == "pending")


def at(month, day, hour=9):
    return dt.datetime(2024, month, day, hour, tzinfo=CST)


def test_default_plans_per_kind(org):
    fair = create_event(org, publish=True, kind="matchmaking", details={"sector": "new_energy"}, starts_at=at(7, 10, 14), ends_at=at(7, 10, 17))
    assert pending(fair) == [("P1D", at(7, 9, 14)), ("P7D", at(7, 3, 14)), ("PT2H", at(7, 10, 12))]
    tour = create_event(org, publish=True, starts_at=at(7, 6), ends_at=at(7, 6, 17))
    assert pending(tour) == [("P1D", at(7, 5)), ("P3D", at(7, 3))]
    contest = create_event(org, publish=True, kind="contest", starts_at=at(10, 20, 14), ends_at=at(10, 20, 18), details={
        "registration_deadline": "2024-08-01T18:00:00+08:00", "final_at": "2024-10-20T14:00:00+08:00"})
    assert pending(contest) == [("final_at:P1D", at(10, 19, 14)), ("registration_deadline:P3D", at(7, 29, 18))]


def test_drafts_have_no_reminders_and_due_ones_are_not_planned(org, clock):
    draft = create_event(org, starts_at=at(7, 6), ends_at=at(7, 6, 12))
    assert plan(draft) == {}
    soon = create_event(org, publish=True, starts_at=at(6, 17), ends_at=at(6, 17, 12))  # 2 days ahead: P3D is past
    assert pending(soon) == [("P1D", at(6, 16))]


def test_moving_an_event_moves_its_reminders_and_cancelling_cancels_them(org):
    event = create_event(org, publish=True, starts_at=at(7, 6), ends_at=at(7, 6, 12), reminders=["P1D"])
    ops.update_event(event, {"starts_at": at(7, 13)})
    db.session.commit()
    assert pending(event) == [("P1D", at(7, 12))]
    assert plan(event)[(at(7, 6), "P1D")][1] == "cancelled"
    ops.update_event(event, {"reminders": ["PT2H"]})
    assert pending(event) == [("PT2H", at(7, 13, 7))]
    ops.cancel_event(event, "场地维修")
    assert pending(event) == []


def test_each_occurrence_has_its_own_reminders(org):
    series = create_event(org, publish=True, starts_at=at(7, 6), ends_at=at(7, 6, 12), reminders=["P1D"], rrule="FREQ=WEEKLY;COUNT=3")
    assert pending(series) == [("P1D", at(7, 5)), ("P1D", at(7, 12)), ("P1D", at(7, 19))]
    ops.cancel_occurrence(series, at(7, 13))
    assert pending(series) == [("P1D", at(7, 5)), ("P1D", at(7, 19))]
    assert next_due() == at(7, 5)


def test_moving_back_revives_the_cancelled_reminder(org):
    event = create_event(org, publish=True, starts_at=at(7, 6), ends_at=at(7, 6, 12), reminders=["P1D"])
    ops.update_event(event, {"starts_at": at(7, 13)})
    ops.update_event(event, {"starts_at": at(7, 6)})
    assert pending(event) == [("P1D", at(7, 5))]
    assert len(plan(event)) == 2  # one row per (occurrence, offset), reused
