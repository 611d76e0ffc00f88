"""Proving a number with a texted code (``REGISTRATION_VERIFY_PHONE=sms``): the code, its limits,
what it opens, and what an attacker who does not hold the phone gets."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from scheduler.channels.sms.console import OUTBOX
from scheduler.extensions import db
from scheduler.privacy.models import PhoneVerification
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import Registration
from tests.factories import create_event, create_org
from tests.pages import csrf_token, html

PHONE, E164 = "13800138000", "+8613800138000"


@pytest.fixture(autouse=True)
def verify_phones(app, monkeypatch):
    """This module runs with codes required, as production does."""
    monkeypatch.setitem(app.config, "REGISTRATION_VERIFY_PHONE", "sms")
    monkeypatch.setitem(app.config, "SMS_PROVIDER", "console")
    app.extensions.pop("sms_provider", None)
    OUTBOX.clear()


@pytest.fixture
def event(ctx):
    return create_event(create_org("wyu", county="pengjiang"), publish=True, capacity=1)


def last_code(e164: str = E164) -> str:
    """The code the console provider "texted" to ``e164`` last."""
    for number, text in reversed(OUTBOX):
        if number == e164 and (found := re.search(r"验证码为(\d{6})", text)):
            return found.group(1)
    raise AssertionError(f"no code texted to {e164}")


def ask(client, phone: str = PHONE):
    return client.post("/api/v1/verifications", json={"phone": phone})


def register(client, event, phone: str = PHONE, **proof):
    body = {"name": "张三", "phone": phone, "consent": NOTICE_VERSION, **proof}
    return client.post(f"/api/v1/events/{event.id}/registrations", json=body)


def test_a_texted_code_proves_the_number_once(client, event):
    assert register(client, event).json["error"]["code"] == "code_required"
    asked = ask(client)
    assert asked.status_code == 201
    text = OUTBOX[-1][1]
    assert text.startswith("【江门科技】您的验证码为") and "10分钟内有效" in text
    created = register(client, event, verification_id=asked.json["id"], code=last_code())
    assert created.status_code == 201, created.json
    assert created.json["phone_verified"] is True
    assert db.session.get(Registration, created.json["id"]).phone_verified_at is not None
    # the same code again (another event) proves nothing: a code proves once
    other = create_event(event.org, publish=True, title="另一场")
    again = register(client, other, verification_id=asked.json["id"], code=last_code())
    assert (again.status_code, again.json["error"]["code"]) == (422, "code_expired")


def test_neither_the_number_nor_the_code_is_stored(client, event):
    asked = ask(client).json
    code = last_code()
    row = db.session.get(PhoneVerification, asked["id"])
    stored = " ".join(str(getattr(row, column.key)) for column in PhoneVerification.__table__.columns)
    assert PHONE not in stored and E164 not in stored and code not in stored


def test_five_wrong_tries_spend_the_code(client, event):
    asked = ask(client).json
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [register(client, event, verification_id=asked["id"], code=wrong).json["error"] for _ in range(5)]
    assert [a["code"] for a in answers] == ["wrong_code"] * 5
    assert answers[0]["fields"]["code"] == "Wrong code: 4 tries left." and answers[3]["fields"]["code"] == "Wrong code: 1 try left."
    right = register(client, event, verification_id=asked["id"], code=code)
    assert (right.status_code, right.json["error"]["code"]) == (422, "code_expired")
    assert db.session.scalar(select(db.func.count()).select_from(Registration)) == 0


def test_a_code_lasts_ten_minutes(client, event, clock):
    asked = ask(client).json
    clock.advance(minutes=10)
    late = register(client, event, verification_id=asked["id"], code=last_code())
    assert (late.status_code, late.json["error"]["code"]) == (422, "code_expired")


def test_a_code_for_one_number_does_not_prove_another(client, event):
    asked = ask(client, "13900139000").json
    stolen = register(client, event, PHONE, verification_id=asked["id"], code=last_code("+8613900139000"))
    assert (stolen.status_code, stolen.json["error"]["code"]) == (404, "no_code")


def test_codes_per_number_are_limited(app, client, event, clock, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_VERIFICATION", "100 per minute")  # the address's own limit apart
    assert ask(client).status_code == 201
    second = ask(client)
    assert (second.status_code, second.json["error"]["code"]) == (429, "too_many_codes")
    for _ in range(4):
        clock.advance(seconds=61)
        assert ask(client).status_code == 201
    clock.advance(seconds=61)
    assert ask(client).json["error"]["code"] == "too_many_codes"  # 5 an hour
    assert len([n for n, _ in OUTBOX if n == E164]) == 5


def test_codes_per_address_are_limited_across_the_api_and_the_pages(app, client, event, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_VERIFICATION", "2 per minute")
    assert ask(client, "13800138001").status_code == 201
    page = client.post(f"/events/{event.id}/register/code", data={
        "csrf_token": csrf_token(client.get(f"/events/{event.id}")), "name": "张三", "phone": "13800138002"})
    assert page.status_code == 200
    assert ask(client, "13800138003").status_code == 429
    assert len(OUTBOX) == 2


def test_the_page_texts_a_code_keeps_what_was_typed_and_registers_with_it(client, event):
    token = csrf_token(client.get(f"/events/{event.id}"))
    sent = html(client.post(f"/events/{event.id}/register/code", data={
        "csrf_token": token, "name": "王芳", "phone": PHONE, "channels": ["sms"], "consent": NOTICE_VERSION}))
    assert "验证码已发送至 +86 138****8000" in sent and 'value="王芳"' in sent
    verification_id = re.search(r'name="verification_id" value="([^"]+)"', sent)[1]
    data = {"csrf_token": token, "name": "王芳", "phone": PHONE, "channels": ["sms"], "consent": NOTICE_VERSION,
            "verification_id": verification_id}
    wrong = client.post(f"/events/{event.id}/register", data={**data, "code": "000000" if last_code() != "000000" else "111111"})
    assert 'id="code-error"' in html(wrong, 422) and "验证码错误" in html(wrong, 422)
    done = client.post(f"/events/{event.id}/register", data={**data, "code": last_code()})
    assert done.status_code == 303
    # the browser that proved the number sees every registration of it on /me
    assert "我的报名" in html(client.get("/me")) and event.title in html(client.get("/me"))


def test_registering_needs_a_code_on_the_page(client, event):
    token = csrf_token(client.get(f"/events/{event.id}"))
    page = client.post(f"/events/{event.id}/register", data={
        "csrf_token": token, "name": "王芳", "phone": PHONE, "consent": NOTICE_VERSION})
    assert 'id="code-error"' in html(page, 422)
    assert db.session.scalar(select(db.func.count()).select_from(Registration)) == 0


def test_the_owner_is_told_of_a_duplicate_registration(client, event, clock):
    first = ask(client).json
    assert register(client, event, verification_id=first["id"], code=last_code()).status_code == 201
    clock.advance(seconds=61)
    second = ask(client).json
    again = register(client, event, verification_id=second["id"], code=last_code())
    assert (again.status_code, again.json["error"]["code"]) == (409, "already_registered")  # the number's owner may know


def test_a_provider_that_fails_is_explained_not_a_500(app, client, event, monkeypatch):
    from scheduler.channels.sms.base import SmsOutcome

    class Refusing:
        name, batch_size, per_number_text = "refusing", 1, True

        def send(self, messages):
            return [SmsOutcome(m.id, "failed", "template not approved") for m in messages]

    monkeypatch.setitem(app.extensions, "sms_provider", Refusing())
    answer = ask(client)
    assert (answer.status_code, answer.json["error"]["code"]) == (503, "code_not_sent")
