"""SMS rules and texts: quiet hours (and the evening before), segments, shortening, mainland numbers."""
from __future__ import annotations

import datetime as dt

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from sqlalchemy import select

from scheduler.channels.sms.rules import is_mainland_mobile, next_morning, send_time
from scheduler.channels.sms.templates import MAX_CHARS, render, segments
from scheduler.extensions import db
from scheduler.registrations.operations import register
from scheduler.reminders.dispatch import dispatch_due
from scheduler.reminders.models import Delivery, Reminder
from tests.factories import CST, create_event, create_org


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 6, day, hour, minute, tzinfo=CST)


@pytest.mark.parametrize("due, starts, now, expected", [
    (at(21, 9), at(22, 9), None, at(21, 9)),  # daytime: at once
    (at(21, 20, 59), at(22, 9), None, at(21, 20, 59)),
    (at(21, 21), at(22, 14), None, at(22, 8)),  # night: next morning
    (at(22, 6), at(22, 14), None, at(22, 8)),
    (at(21, 23), at(22, 8, 30), None, at(21, 20, 59)),  # morning too late for an 08:30 start: the evening before
    (at(22, 6), at(22, 8, 30), at(21, 12), at(21, 20, 59)),  # planned ahead
    (at(22, 6), at(22, 8, 30), at(22, 6), at(22, 8)),  # the evening has passed: 08:00 is still before the start
    (at(22, 5), at(22, 7), at(22, 5), at(22, 5)),  # an early start: a text now beats none
])
def test_quiet_hours(due, starts, now, expected):
    assert send_time(due, starts, now) == expected


def test_next_morning_is_eight_tomorrow_in_shanghai():
    assert next_morning(at(21, 23, 30)) == at(22, 8)
    assert next_morning(dt.datetime(2024, 6, 21, 17, tzinfo=dt.timezone.utc)) == at(23, 8)  # already the 22nd in Shanghai


def test_mainland_mobile_numbers_only():
    assert is_mainland_mobile("+8613800138000")
    assert not is_mainland_mobile("+85291234567")  # Hong Kong
    assert not is_mainland_mobile("+867503123456")  # a Jiangmen landline
    assert not is_mainland_mobile("+8612345")


def test_segments_are_counted_as_carriers_bill_them():
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2
    assert segments("中" * 70) == 1 and segments("中" * 71) == 2 and segments("中" * 134) == 2 and segments("中" * 135) == 3


def test_a_long_text_is_shortened_on_a_field_not_mid_wording():
    params = {"title": "江门市青少年科技创新大赛暨科普嘉年华" * 8, "time": "6月22日 09:00", "place": "江门市科技馆一楼大厅" * 8,
              "meeting": "", "link": "https://jm.example/m/12-abcdef"}
    text = render("reminder", params)
    assert len(text.text) <= MAX_CHARS
    assert text.text.startswith("【江门科技】您报名的“江门市") and text.text.endswith("管理提醒：https://jm.example/m/12-abcdef")
    assert "…" in text.params["place"] and "6月22日 09:00开始" in text.text
    short = render("reminder", {**params, "title": "研学", "place": "科技馆"})
    assert short.text == "【江门科技】您报名的“研学”将于6月22日 09:00开始，地点：科技馆。管理提醒：https://jm.example/m/12-abcdef"
    assert (len(short.text), short.segments) == (72, 2)  # 70 would be one segment


def test_a_text_due_at_night_is_dispatched_the_evening_before(ctx, clock):
    event = create_event(create_org("wyu"), publish=True, starts_at=at(22, 8, 30), ends_at=at(22, 12), reminders=["PT10H"])
    register(event, name="张三", phone="13800138000", channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    reminder = db.session.scalar(select(Reminder).where(Reminder.event_id == event.id))
    assert (reminder.scheduled_at, reminder.dispatch_at) == (at(21, 22, 30), at(21, 20, 59))
    clock.set(at(21, 20, 59))
    assert dispatch_due() == 1
    db.session.commit()
    [sms] = db.session.scalars(select(Delivery).where(Delivery.channel == "sms")).all()
    assert sms.next_attempt_at == at(21, 20, 59)
