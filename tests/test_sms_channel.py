"""Texts to registrants end to end: dispatch, claim, the provider (a real HTTP gateway fake on
127.0.0.1, ``tests/fake_sms.py``), and what is recorded; the reminder page behind the short
link, the providers' reply callback and the text preview through the Flask test client.

Nothing sleeps for the scheduler: the injected clock is moved and ``dispatch_due()`` /
``run_once()`` do in this thread what the background dispatcher and senders do.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from sqlalchemy import func, select

from scheduler.alerts.models import Alert
from scheduler.channels.sms.links import manage_code, manage_url
from scheduler.channels.sms.models import SmsChoice, SmsDailyCount
from scheduler.util.phone import phone_key
from scheduler.channels.sms.templates import MAX_CHARS
from scheduler.events import operations as ops
from scheduler.extensions import db
from scheduler.registrations.models import Registration
from scheduler.registrations.operations import cancel_registration, register
from scheduler.reminders import policy, sender
from scheduler.reminders.dispatch import dispatch_due
from scheduler.reminders.models import Delivery
from scheduler.reminders.sender import run_once
from scheduler.util import http
from tests.pages import csrf_token, prove_number
from tests.factories import CST, auth, create_event, create_org, create_user
from tests.fake_sms import FakeGateway
from tests import outbox
from tests.outbox import tick

REPLY_TOKEN = "replies-0123456789abcdef"
PHONE, E164, MASKED = "13800138000", "+8613800138000", "+86 138****8000"
_UNSET = object()


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, minute, tzinfo=CST)


class Gateway(FakeGateway):
    """The gateway fake, asking for ``retry_after`` seconds when it rate-limits."""

    retry_after = 300

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        status, extra, answer = super().answer(path, headers, body)
        if status == 429:
            extra = {**extra, "Retry-After": str(self.retry_after)}
        return status, extra, answer


def configure(app, **settings: Any) -> None:
    """Change SMS settings for this test (restored by the ``gateway`` fixture); the provider is rebuilt."""
    app.config.update(settings)
    app.extensions.pop("sms_provider", None)


@contextlib.contextmanager
def restored(app, keys: tuple[str, ...]) -> Iterator[None]:
    """Put the settings ``keys`` back as they were (absent ones removed), and forget the provider and its connections."""
    saved = {key: app.config.get(key, _UNSET) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is _UNSET:
                app.config.pop(key, None)
            else:
                app.config[key] = value
        app.extensions.pop("sms_provider", None)
        http.forget_connections()


@pytest.fixture
def gateway(app) -> Iterator[Gateway]:
    """The http provider pointed at a verifying gateway fake; every setting is put back afterwards."""
    keys = ("SMS_PROVIDER", "SMS_HTTP_URL", "SMS_HTTP_AUTH_HEADER", "SMS_HTTP_SUCCESS", "SMS_HTTP_ID_FIELD", "SMS_HTTP_BODY",
            "SMS_HTTP_BATCH_SIZE", "SMS_TIMEOUT", "SMS_DAILY_CAP", "SMS_REPLY_TOKEN", "OUTBOUND_ALLOWLIST")
    with restored(app, keys), Gateway(token="test-token") as fake:
        configure(app, SMS_PROVIDER="http", SMS_HTTP_URL=fake.url + "send", SMS_HTTP_AUTH_HEADER="Authorization: Bearer test-token",
                  SMS_HTTP_SUCCESS="json:code=0", SMS_HTTP_ID_FIELD="data.id", SMS_HTTP_BODY=None, SMS_HTTP_BATCH_SIZE=1,
                  SMS_TIMEOUT=0.5, SMS_DAILY_CAP=5, SMS_REPLY_TOKEN=REPLY_TOKEN, OUTBOUND_ALLOWLIST=["127.0.0.1/32"])
        yield fake
    assert fake.rejected == [], "the gateway refused a request"


@pytest.fixture
def org(ctx):
    return create_org("wyu")


def deliveries(**where: Any) -> list[Delivery]:
    """The texts among the deliveries."""
    return outbox.deliveries(**{"channel": "sms", **where})


def only(**where: Any) -> Delivery:
    [delivery] = deliveries(**where)
    return delivery



def texts(fake: FakeGateway) -> list[tuple[str, str]]:
    """(phone, text) of every text the gateway took, in order."""
    found = []
    for request in fake.requests:
        if "messages" in request:
            found += [(m["phone"], m["text"]) for m in request["messages"]]
        else:
            found.append((request["phone"], request["text"]))
    return found


def signup(event, phone: str = PHONE, name: str = "张三") -> Registration:
    registration, _ = register(event, name=name, phone=phone, channels=["sms"], consent_version=NOTICE_VERSION)
    db.session.commit()
    return registration


def reminder_text(event, registration: Registration, when: str = "6月22日 09:00") -> str:
    return (f"【江门科技】您报名的“{event.title}”将于{when}开始，地点：江门市科技馆，集合：{when} 江门市科技馆北门。"
            f"管理提醒：{manage_url(registration.id)}")


# -- 1. the reminder text ---------------------------------------------------------------------

def test_a_seated_registrant_gets_the_reminder_text_and_a_waitlisted_one_none(org, gateway, clock):
    event = create_event(org, publish=True, capacity=1, reminders=["P1D"])
    seated = signup(event)
    waiting = signup(event, "13900139000", "李四")
    assert (seated.status, waiting.status) == ("registered", "waitlisted")
    assert tick(clock, at(6, 21)) == 1
    text = reminder_text(event, seated)
    assert gateway.requests == [{"id": only().id, "phone": E164, "text": text}]
    assert text.startswith("【江门科技】") and "6月22日 09:00" in text and "地点：江门市科技馆" in text
    assert "集合：6月22日 09:00 江门市科技馆北门" in text
    assert text.endswith(f"http://scheduler.test/m/{manage_code(seated.id)}")
    sms = only()
    assert (sms.registration_id, sms.status, sms.type, sms.attempts, sms.sent_at) == (seated.id, "sent", "reminder.due", 1, at(6, 21))
    assert deliveries(registration_id=waiting.id) == []
    assert run_once() == 0 and len(gateway.requests) == 1


def test_a_contests_stage_reminders_name_the_stage_and_its_time(org, gateway, clock):
    event = create_event(
        org, publish=True, kind="contest", title="科技杯",
        starts_at=at(7, 20), ends_at=at(7, 20, 17),
        details={"registration_deadline": at(7, 1, 17).isoformat(), "final_at": at(7, 20).isoformat()},
    )
    registration = signup(event)
    assert tick(clock, at(6, 28, 17)) == 1  # 3 days before the deadline
    assert tick(clock, at(7, 19, 9)) == 1  # 1 day before the final
    link = manage_url(registration.id)
    assert [text for _, text in texts(gateway)] == [
        f"【江门科技】您报名的“科技杯”报名截止时间：7月1日 17:00，请留意。管理提醒：{link}",
        f"【江门科技】您报名的“科技杯”决赛时间：7月20日 09:00，请留意。管理提醒：{link}",
    ]


# -- 2. quiet hours ---------------------------------------------------------------------------

def test_a_text_due_at_22_waits_until_8_without_counting_an_attempt(org, gateway, clock):
    # due 20:30 for a 14:00 event next day; the sender only gets to it at 22:00
    event = create_event(org, publish=True, starts_at=at(6, 22, 14), ends_at=at(6, 22, 16), reminders=["PT17H30M"])
    registration = signup(event)
    clock.set(at(6, 21, 20, 30))
    assert dispatch_due() == 1
    db.session.commit()
    assert only().next_attempt_at == at(6, 21, 20, 30)
    clock.set(at(6, 21, 22))
    assert run_once() == 0
    sms = only()
    assert (sms.status, sms.attempts, sms.next_attempt_at, sms.leased_by) == ("pending", 0, at(6, 22, 8), None)
    assert "Quiet hours" in sms.last_error
    assert gateway.requests == []
    assert tick(clock, at(6, 22, 7, 59)) == 0 and gateway.requests == []
    assert tick(clock, at(6, 22, 8)) == 1
    assert texts(gateway) == [(E164, reminder_text(event, registration, "6月22日 14:00"))]
    sms = only()
    assert (sms.status, sms.attempts, sms.sent_at) == ("sent", 1, at(6, 22, 8))


def test_a_reminder_due_at_22_is_written_for_8_the_next_morning(org, gateway, clock):
    event = create_event(org, publish=True, starts_at=at(6, 22, 14), ends_at=at(6, 22, 16), reminders=["PT16H"])
    signup(event)
    assert tick(clock, at(6, 21, 22)) == 0
    sms = only()
    assert (sms.status, sms.attempts, sms.next_attempt_at) == ("pending", 0, at(6, 22, 8))
    assert tick(clock, at(6, 22, 8)) == 1 and len(gateway.requests) == 1


def test_a_cancellation_at_night_waits_for_the_morning(org, gateway, clock):
    event = create_event(org, publish=True, starts_at=at(6, 22, 14), ends_at=at(6, 22, 16), reminders=[])
    signup(event)
    clock.set(at(6, 21, 22))
    ops.cancel_event(event, "台风")
    db.session.commit()
    assert run_once() == 0
    sms = only()
    assert (sms.type, sms.status, sms.attempts, sms.next_attempt_at) == ("event.cancelled", "pending", 0, at(6, 22, 8))
    assert gateway.requests == []
    clock.set(at(6, 22, 8))
    assert run_once() == 1 and only().status == "sent"


def test_a_reminder_due_at_night_for_an_0830_event_goes_at_2059_the_evening_before(org, gateway, clock):
    event = create_event(org, publish=True, starts_at=at(6, 22, 8, 30), ends_at=at(6, 22, 12), reminders=["PT10H"])
    registration = signup(event)
    assert tick(clock, at(6, 21, 20, 58)) == 0 and deliveries() == []
    assert tick(clock, at(6, 21, 20, 59)) == 1
    assert texts(gateway) == [(E164, reminder_text(event, registration, "6月22日 08:30"))]
    assert only().sent_at == at(6, 21, 20, 59)


# -- 3. the daily cap -------------------------------------------------------------------------

def test_over_the_daily_cap_the_third_text_waits_for_the_next_morning(app, org, gateway, clock):
    configure(app, SMS_DAILY_CAP=2)
    events = [create_event(org, publish=True, starts_at=at(6, 22, 9 + n), ends_at=at(6, 22, 12), reminders=["P1D"])
              for n in range(3)]  # reminded 21 June at 09:00, 10:00, 11:00
    for event in events:
        signup(event)
    assert tick(clock, at(6, 21, 9)) == 1
    assert tick(clock, at(6, 21, 10)) == 1
    assert tick(clock, at(6, 21, 11)) == 0
    assert len(gateway.requests) == 2
    held = only(event_id=events[2].id)
    assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, at(6, 22, 8))
    assert "2 texts today" in held.last_error
    assert db.session.scalar(select(SmsDailyCount.count).where(SmsDailyCount.phone_hash == phone_key(E164))) == 2
    assert tick(clock, at(6, 21, 20, 59)) == 0 and len(gateway.requests) == 2
    assert tick(clock, at(6, 22, 8)) == 1
    assert [text for _, text in texts(gateway)][-1].startswith(f"【江门科技】您报名的“{events[2].title}”")
    assert {d.status for d in deliveries()} == {"sent"}


def test_a_text_held_by_the_cap_goes_next_morning_or_expires_if_its_event_started(app, org, gateway, clock):
    configure(app, SMS_DAILY_CAP=2)
    for n in range(2):
        signup(create_event(org, publish=True, starts_at=at(6, 22, 9 + n), ends_at=at(6, 22, 12), reminders=["P1D"]))
    half_past_eight = create_event(org, publish=True, starts_at=at(6, 22, 8, 30), ends_at=at(6, 22, 12), reminders=["PT21H30M"])
    half_past_seven = create_event(org, publish=True, starts_at=at(6, 22, 7, 30), ends_at=at(6, 22, 12), reminders=["PT19H30M"])
    signup(half_past_eight)
    signup(half_past_seven)
    assert [tick(clock, when) for when in (at(6, 21, 9), at(6, 21, 10), at(6, 21, 11), at(6, 21, 12))] == [1, 1, 0, 0]
    for event in (half_past_eight, half_past_seven):  # not 20:59 today: the number had its texts today
        held = only(event_id=event.id)
        assert (held.status, held.attempts, held.next_attempt_at) == ("pending", 0, at(6, 22, 8))
    assert tick(clock, at(6, 21, 20, 59)) == 0
    assert tick(clock, at(6, 22, 8)) == 1
    assert only(event_id=half_past_eight.id).status == "sent"
    expired = only(event_id=half_past_seven.id)
    assert (expired.status, expired.sent_at) == ("expired", None)
    assert len(gateway.requests) == 3


# -- 4. opting out on the page behind the link ------------------------------------------------


def choose(client, code: str, action: str):
    token = csrf_token(client.get(f"/m/{code}"))
    return client.post(f"/m/{code}", data={"csrf_token": token, "action": action})


def choices(phone: str = E164) -> list[tuple[bool, str, str]]:
    db.session.expire_all()
    return [(c.opted_out, c.source, c.detail) for c in db.session.scalars(
        select(SmsChoice).where(SmsChoice.phone_hash == phone_key(phone)).order_by(SmsChoice.created_at, SmsChoice.id))]


def test_the_page_shows_the_masked_number_and_stops_texts_for_one_event(org, gateway, client, clock):
    tour = create_event(org, publish=True, reminders=["P1D"])
    lecture = create_event(org, publish=True, reminders=["P1D"], title="科普讲座")
    registration, other = signup(tour), signup(lecture)
    code = manage_code(registration.id)
    page = client.get(f"/m/{code}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and MASKED in body and E164 not in body and PHONE not in body
    assert tour.title in body and 'value="stop_event"' in body
    assert client.post(f"/m/{code}", data={"action": "stop_event"}).status_code == 400  # no CSRF token
    answer = choose(client, code, "stop_event")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/m/{code}")
    db.session.expire_all()
    assert "sms" not in db.session.get(Registration, registration.id).channels
    assert "sms" in db.session.get(Registration, other.id).channels
    assert choices() == []  # a choice about one event only: the number is not opted out
    assert 'value="resume_event"' in client.get(f"/m/{code}").get_data(as_text=True)
    tick(clock, at(6, 21))
    assert texts(gateway) == [(E164, reminder_text(lecture, other))]
    assert deliveries(registration_id=registration.id) == []


def test_stop_all_stops_every_text_to_the_number_and_resume_all_restores_them(org, gateway, client, clock):
    first = create_event(org, publish=True, reminders=["P1D"])
    second = create_event(org, publish=True, reminders=["P1D"], starts_at=at(6, 23), ends_at=at(6, 23, 12))
    third = create_event(org, publish=True, reminders=["P1D"], starts_at=at(6, 24), ends_at=at(6, 24, 12))
    registrations = [signup(first), signup(second), signup(third)]
    code = manage_code(registrations[0].id)
    # the link opens one registration: changing every text of the number needs the number proved
    assert 'value="stop_all"' not in client.get(f"/m/{code}").get_data(as_text=True)
    assert choose(client, code, "stop_all").status_code == 403
    assert choices() == []
    prove_number(client, PHONE)
    assert choose(client, code, "stop_all").status_code == 302
    assert choices() == [(True, "link", f"/m/{code[:8]}")]
    assert "resume_all" in client.get(f"/m/{manage_code(registrations[1].id)}").get_data(as_text=True)  # every page of the number
    assert tick(clock, at(6, 21)) == 0
    stopped = only(registration_id=registrations[0].id)
    assert (stopped.status, stopped.last_error) == ("cancelled", "The number asked for no more texts.")
    assert gateway.requests == []
    clock.set(at(6, 21, 12))
    assert choose(client, code, "resume_all").status_code == 403  # the proof lasts 30 minutes
    prove_number(client, PHONE)
    assert choose(client, code, "resume_all").status_code == 302
    assert choices() == [(True, "link", f"/m/{code[:8]}"), (False, "link", f"/m/{code[:8]}")]
    assert 'value="stop_all"' in client.get(f"/m/{code}").get_data(as_text=True)
    assert tick(clock, at(6, 22)) == 1
    assert texts(gateway) == [(E164, reminder_text(second, registrations[1], "6月23日 09:00"))]


@pytest.mark.parametrize("code", ["garbage", "1-", "-abc", "zzzzzzzzzzzzz-AAAAAAAAAAAA", "1-AAAAAAAAAAAA"])
def test_a_wrong_or_forged_code_is_not_found(org, client, code):
    registration = signup(create_event(org, publish=True))
    token = csrf_token(client.get(f"/m/{manage_code(registration.id)}"))  # a real token: the code is what is wrong
    assert client.get(f"/m/{code}").status_code == 404
    assert client.post(f"/m/{code}", data={"csrf_token": token, "action": "stop_all"}).status_code == 404
    assert choices() == []


def test_a_code_for_another_purpose_or_a_missing_registration_is_not_found(org, client):
    from scheduler.channels.sms.links import signed_code

    registration = signup(create_event(org, publish=True))
    assert client.get(f"/m/{signed_code('endpoint-unsubscribe', registration.id)}").status_code == 404
    assert client.get(f"/m/{manage_code(registration.id + 1000)}").status_code == 404
    assert client.get(f"/m/{manage_code(registration.id)}").status_code == 200


# -- 5. opting out by replying ----------------------------------------------------------------

ALIBABA = [{"phone_number": PHONE, "content": "TD", "send_time": "2024-06-15 10:00:00", "dest_code": "", "sequence_id": 1}]
TENCENT = [{"mobile": PHONE, "nationcode": "86", "text": "t", "sign": "江门科技", "time": 1718416800, "extend": ""}]


@pytest.mark.parametrize(("document", "keyword"), [(ALIBABA, "TD"), (TENCENT, "t")], ids=["alibaba", "tencent"])
def test_a_stop_reply_is_recorded_and_later_texts_are_cancelled(org, gateway, client, clock, document, keyword):
    event = create_event(org, publish=True, reminders=["P1D"])
    registration = signup(event)
    answer = client.post(f"/api/v1/sms/replies/{REPLY_TOKEN}", json=document)
    assert answer.status_code == 200
    data = answer.get_json()
    assert {key: data[key] for key in ("code", "result", "stopped")} == {"code": 0, "result": 0, "stopped": 1}
    assert choices() == [(True, "reply", keyword)]
    assert tick(clock, at(6, 21)) == 0
    assert only(registration_id=registration.id).status == "cancelled"
    assert gateway.requests == []


def test_replies_need_the_token_and_other_words_change_nothing(org, gateway, client, clock):
    registration = signup(create_event(org, publish=True, reminders=["P1D"]))
    assert client.post("/api/v1/sms/replies/wrong-token", json=ALIBABA).status_code == 404
    assert client.post("/api/v1/sms/replies/", json=ALIBABA).status_code == 404
    polite = [{**ALIBABA[0], "content": "好的"}]
    answer = client.post(f"/api/v1/sms/replies/{REPLY_TOKEN}", json=polite)
    assert answer.status_code == 200 and answer.get_json()["stopped"] == 0
    assert choices() == []
    assert tick(clock, at(6, 21)) == 1
    assert only(registration_id=registration.id).status == "sent"


def test_replies_are_off_without_a_token(app, org, gateway, client):
    configure(app, SMS_REPLY_TOKEN="")
    assert client.post("/api/v1/sms/replies/x", json=ALIBABA).status_code == 404
    assert choices() == []


# -- 6. no second text after a timeout --------------------------------------------------------

def test_a_timeout_is_unknown_and_never_sent_again(app, org, gateway, clock):
    configure(app, SMS_TIMEOUT=0.2)
    gateway.mode, gateway.sleep_for = "sleep", 2.0
    registration = signup(create_event(org, publish=True, reminders=["P1D"]))
    assert tick(clock, at(6, 21)) == 1
    sms = only()
    assert (sms.status, sms.attempts, sms.sent_at) == ("unknown", 1, None)
    assert E164 not in sms.last_error and "not sent again" in sms.last_error
    gateway.mode = "ok"
    for when in (at(6, 21, 0, 5), at(6, 21, 1), at(6, 21, 12)):
        assert tick(clock, when) == 0
    assert len(gateway.requests) == 1 and only(registration_id=registration.id).status == "unknown"


def test_a_claim_whose_lease_ran_out_becomes_unknown_never_resent(org, gateway, clock):
    signup(create_event(org, publish=True, reminders=["P1D"]))
    clock.set(at(6, 21))
    dispatch_due()
    db.session.commit()
    taken = sender.claim(10)
    db.session.commit()
    assert taken.claimed == 1 and only().status == "sending"
    clock.advance(seconds=policy.lease().total_seconds() - 1)
    assert sender.reclaim_expired_leases() == 0
    clock.advance(seconds=2)
    assert sender.reclaim_expired_leases() == 1
    db.session.commit()
    sms = only()
    assert (sms.status, sms.leased_by) == ("unknown", None)
    assert run_once() == 0
    # the sender that held it comes back late: its result is fenced off
    sender.record(taken.token, [(taken.outgoing[0], sender.send_one(taken.outgoing[0]))])
    db.session.commit()
    assert only().status == "unknown"
    clock.advance(hours=1)
    assert run_once() == 0
    assert len(gateway.requests) == 1  # only the late sender's own request, never a re-send


# -- 7. the provider's answers ----------------------------------------------------------------

def test_a_rate_limited_text_waits_as_long_as_the_provider_says(org, gateway, clock):
    gateway.mode = "rate_limited"
    signup(create_event(org, publish=True, reminders=["P1D"]))
    assert tick(clock, at(6, 21)) == 1
    sms = only()
    assert (sms.status, sms.attempts, sms.last_status_code) == ("retrying", 1, None)
    assert sms.next_attempt_at == at(6, 21) + dt.timedelta(seconds=Gateway.retry_after)  # longer than the 1-minute schedule
    assert "429" in sms.last_error
    gateway.mode = "ok"
    assert tick(clock, at(6, 21, 9, 4)) == 0
    assert tick(clock, at(6, 21, 9, 5)) == 1
    sms = only()
    assert (sms.status, sms.attempts) == ("sent", 2) and len(gateway.requests) == 2


def test_an_invalid_number_fails_for_good_and_the_organizers_are_told(org, gateway, clock):
    gateway.invalid.add(E164)
    event = create_event(org, publish=True, reminders=["P1D"])
    signup(event)
    assert tick(clock, at(6, 21)) == 1
    sms = only()
    assert (sms.status, sms.attempts) == ("dead", 1)
    assert "code=1001" in sms.last_error and E164 not in sms.last_error and "138****8000" in sms.last_error
    [alert] = db.session.scalars(select(Alert).where(Alert.org_id == org.id, Alert.kind == "delivery.dead")).all()
    assert "1 deliveries gave up" in alert.message
    assert tick(clock, at(6, 21, 12)) == 0 and len(gateway.requests) == 1


def test_server_errors_are_retried_on_the_sms_schedule_then_dead(org, gateway, clock):
    gateway.mode = "server_error"
    signup(create_event(org, publish=True, reminders=["P1D"]))
    assert tick(clock, at(6, 21)) == 1
    sms = only()
    assert (sms.status, sms.attempts) == ("retrying", 1)
    assert at(6, 21, 9, 1) <= sms.next_attempt_at <= at(6, 21, 9, 1) + dt.timedelta(seconds=6)
    clock.set(sms.next_attempt_at)
    assert run_once() == 1
    sms = only()
    assert (sms.status, sms.attempts) == ("retrying", 2)
    tried = clock()
    assert tried + dt.timedelta(minutes=10) <= sms.next_attempt_at <= tried + dt.timedelta(minutes=11)
    clock.set(sms.next_attempt_at)
    assert run_once() == 1
    sms = only()
    assert (sms.status, sms.attempts) == ("dead", 3) and sms.last_error.startswith("Gave up after 3 attempts")
    assert len(gateway.requests) == 3


# -- 8. cancellations, moves and promotions ----------------------------------------------------

def test_a_cancellation_is_texted_to_the_seated_and_the_waiting(org, gateway, clock):
    event = create_event(org, publish=True, capacity=1)
    seated, waiting = signup(event), signup(event, "13900139000", "李四")
    gone = signup(event, "13700137000", "王五")
    cancel_registration(db.session.get(Registration, gone.id))
    db.session.commit()
    clock.set(at(6, 16, 10))
    ops.cancel_event(event, "台风")
    db.session.commit()
    assert run_once() == 2
    expected = {
        E164: f"【江门科技】很抱歉，您报名的“{event.title}”（原定6月22日 09:00）已取消，原因：台风。管理提醒：{manage_url(seated.id)}",
        "+8613900139000": f"【江门科技】很抱歉，您报名的“{event.title}”（原定6月22日 09:00）已取消，原因：台风。"
                          f"管理提醒：{manage_url(waiting.id)}",
    }
    assert dict(texts(gateway)) == expected
    assert {d.status for d in deliveries(type="event.cancelled")} == {"sent"}
    assert deliveries(registration_id=gone.id) == []


def test_a_move_is_texted_and_a_title_change_is_not(org, gateway, clock):
    event = create_event(org, publish=True, reminders=["P1D"])
    registration = signup(event)
    ops.update_event(event, {"title": "新标题：走进科技馆"})
    db.session.commit()
    assert run_once() == 0
    ops.update_event(event, {"starts_at": at(6, 29), "venue": "江门市科技馆新馆"})
    db.session.commit()
    assert run_once() == 1
    assert texts(gateway) == [(E164, "【江门科技】您报名的“新标题：走进科技馆”有变更：时间改为6月29日 09:00，地点改为江门市科技馆新馆。"
                                     f"管理提醒：{manage_url(registration.id)}")]
    sms = only(type="event.updated")
    assert (sms.status, sms.not_after) == ("sent", at(6, 29))
    # the reminder follows the move
    assert tick(clock, at(6, 21)) == 0
    assert tick(clock, at(6, 28)) == 1
    assert "将于6月29日 09:00开始，地点：江门市科技馆新馆" in texts(gateway)[-1][1]


def test_a_promotion_from_the_waitlist_is_texted_to_the_promoted_only(org, gateway, clock):
    event = create_event(org, publish=True, capacity=1)
    seated, waiting = signup(event), signup(event, "13900139000", "李四")
    promoted = cancel_registration(db.session.get(Registration, seated.id))
    db.session.commit()
    assert [r.id for r in promoted] == [waiting.id]
    assert run_once() == 1
    assert texts(gateway) == [("+8613900139000", f"【江门科技】您已从候补转为正式报名：“{event.title}”，6月22日 09:00开始，"
                                                 f"地点：江门市科技馆。管理提醒：{manage_url(waiting.id)}")]
    assert only().type == "registration.promoted"


# -- 9. batching ------------------------------------------------------------------------------

def test_250_reminders_go_in_three_requests(app, org, gateway, clock):
    configure(app, SMS_HTTP_BODY='{"messages": {messages}}', SMS_HTTP_BATCH_SIZE=100)
    event = create_event(org, publish=True, reminders=["P1D"])
    people = []
    for n in range(250):
        registration, _ = register(event, name=f"参加者{n}", phone=f"1380000{n:04d}", channels=["sms"], consent_version=NOTICE_VERSION)
        people.append(registration)
    db.session.commit()
    assert tick(clock, at(6, 21)) == 250
    assert [len(request["messages"]) for request in gateway.requests] == [100, 100, 50]
    sent = dict(texts(gateway))
    assert len(sent) == 250
    for registration in (people[0], people[137], people[249]):
        assert sent[registration.phone] == reminder_text(event, registration)
    ids = {m["id"] for request in gateway.requests for m in request["messages"]}
    assert ids == {d.id for d in deliveries()}
    assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) == 250


# -- 10. the preview --------------------------------------------------------------------------

def test_the_preview_shows_the_text_and_its_segments(org, client):
    headers = auth(create_user(org=org))
    params = {"title": "走进中微子实验室", "time": "7月6日 08:30", "place": "江门中微子实验室", "meeting": "", "link": "http://x/m/1-a"}
    answer = client.post("/api/v1/sms/preview", json={"type": "reminder", "params": params}, headers=headers)
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["text"] == "【江门科技】您报名的“走进中微子实验室”将于7月6日 08:30开始，地点：江门中微子实验室。管理提醒：http://x/m/1-a"
    assert (data["characters"], data["segments"], data["shortened"]) == (66, 1, False)  # 70 characters fit one segment
    assert data["template"].startswith("您报名的“{title}”")


def test_the_preview_shortens_a_long_title(org, client):
    headers = auth(create_user(org=org))
    title = "江门市青少年科技创新大赛暨" * 20
    answer = client.post("/api/v1/sms/preview", json={"type": "promotion", "params": {"title": title, "time": "7月6日 08:30",
                                                                                      "place": "江门科技馆"}}, headers=headers)
    data = answer.get_json()
    assert answer.status_code == 200 and data["shortened"] is True
    assert data["characters"] == len(data["text"]) <= MAX_CHARS
    assert "…" in data["text"] and title not in data["text"] and title[:20] in data["text"]
    assert data["text"].endswith("地点：江门科技馆。管理提醒：http://scheduler.test/m/xxxxxx")
    assert data["segments"] == -(-data["characters"] // 67)


def test_the_preview_needs_a_token(client):
    assert client.post("/api/v1/sms/preview", json={"type": "reminder", "params": {}}).status_code == 401


# -- 11. what people typed, as the providers take it ------------------------------------------

#: Invisible characters that must never reach a text (bidirectional controls, zero-width, BOM, C0/C1).
INVISIBLE = "\u202e\u202a\u2066\u2069\u200b\u200e\u200f\ufeff\x85\x9b\x07\x1b"


def test_invisible_characters_in_old_rows_never_reach_a_text(org, gateway, clock):
    """Rows stored before input was cleaned (here written straight through the operations) are
    cleaned where the text is made."""
    event = create_event(org, publish=True, reminders=["P1D"], title="\u202e走进\u200b实验室\ufeff",
                         venue="江门\u2066市科技馆\u2069", details={"meeting_point": "北门\u200f\x85"})
    registration = signup(event)
    assert tick(clock, at(6, 21)) == 1
    [(_, text)] = texts(gateway)
    assert text == (f"【江门科技】您报名的“走进实验室”将于6月22日 09:00开始，地点：江门市科技馆，集合：6月22日 09:00 北门。"
                    f"管理提醒：{manage_url(registration.id)}")
    assert not set(INVISIBLE) & set(text)
    ops.cancel_event(event, "场地\u202e维修\x1b[31m")
    db.session.commit()
    run_once()
    cancelled = texts(gateway)[-1][1]
    assert "原因：场地维修" in cancelled and not set(INVISIBLE) & set(cancelled)


def test_brackets_and_links_in_a_title_are_made_fit_for_the_provider(org, gateway, clock):
    """【】 is the signature's (providers refuse it in variables): （） instead; links in a variable are
    refused too: dropped; the reminder page's own link stays."""
    event = create_event(org, publish=True, reminders=["P1D"], title="【直播】走进实验室 https://t.cn/A6xyz",
                         venue="www.jmkx.cn", details={"meeting_point": "北门（见 jmkx.gov.cn/map）"})
    registration = signup(event)
    assert tick(clock, at(6, 21)) == 1
    [(_, text)] = texts(gateway)
    assert text == ("【江门科技】您报名的“（直播）走进实验室”将于6月22日 09:00开始，地点：详见活动页面，"
                    f"集合：6月22日 09:00 北门（见 ）。管理提醒：{manage_url(registration.id)}")
    assert text.count("【") == text.count("】") == 1 and text.count("http") == 1


def test_a_variable_holds_at_most_35_characters(org, client):
    """Alibaba's notification templates take 1-35 characters per variable."""
    title = "江门市青少年科技创新大赛暨科普嘉年华开幕式及优秀作品展示与颁奖典礼活动仪式"
    assert len(title) == 37
    headers = auth(create_user(org=org))
    answer = client.post("/api/v1/sms/preview", json={"type": "promotion", "params": {
        "title": title, "time": "7月6日 08:30", "place": "江门科技馆"}}, headers=headers).get_json()
    assert f"“{title[:34]}…”" in answer["text"] and answer["shortened"] is True


@pytest.fixture
def aliyun(app) -> Iterator[Any]:
    """The Alibaba provider pointed at its verifying fake, which refuses variables as Alibaba does."""
    from tests.fake_sms import FakeAliyun

    keys = ("SMS_PROVIDER", "SMS_ALIYUN_ACCESS_KEY_ID", "SMS_ALIYUN_ACCESS_KEY_SECRET", "SMS_ALIYUN_SIGN_NAME",
            "SMS_ALIYUN_TEMPLATES", "SMS_ALIYUN_ENDPOINT", "SMS_TIMEOUT", "SMS_SIGN_NAME", "OUTBOUND_ALLOWLIST")
    with restored(app, keys), FakeAliyun(access_key_id="LTAI-test-id", secret="test-secret", sign_name="江门科技") as fake:
        configure(app, SMS_PROVIDER="aliyun", SMS_ALIYUN_ACCESS_KEY_ID="LTAI-test-id",
                  SMS_ALIYUN_ACCESS_KEY_SECRET="test-secret", SMS_ALIYUN_SIGN_NAME="江门科技", SMS_SIGN_NAME="江门科技",
                  SMS_ALIYUN_TEMPLATES={"reminder": "SMS_100000001"}, SMS_ALIYUN_ENDPOINT=fake.url,
                  SMS_TIMEOUT=2, OUTBOUND_ALLOWLIST=["127.0.0.1/32"])
        yield fake


def test_alibaba_takes_the_variables_of_a_title_with_brackets_a_link_and_40_characters(org, aliyun, clock):
    title = "【线上直播】" + "江门中微子实验室开放日" * 3 + " 报名见 https://t.cn/A6xyz"
    event = create_event(org, publish=True, reminders=["P1D"], title=title, venue="江门中微子实验室\u202e")
    signup(event)
    assert tick(clock, at(6, 21)) == 1
    assert aliyun.rejected == []
    assert only().status == "sent"
    [request] = aliyun.requests
    [params] = request["template_params"]
    assert params["title"] == "（线上直播）" + ("江门中微子实验室开放日" * 3)[:28] + "…"
    assert len(params["title"]) == 35 and params["place"] == "江门中微子实验室"
    assert all(len(value) <= 35 for name, value in params.items() if name != "link")
