"""Participants' trust (PIPL): a number opens nothing of anyone else's; consent is recorded; a
participant downloads and erases their data. Tried as an attacker would, and as the owner."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from icalendar import Calendar
from sqlalchemy import select

from scheduler.audit.models import AuditEntry
from scheduler.channels.sms.links import manage_code
from scheduler.channels.sms.console import OUTBOX
from scheduler.channels.sms.models import SmsChoice
from scheduler.extensions import db
from scheduler.privacy.notice import NOTICE_VERSION
from scheduler.registrations.models import Registration
from tests.conftest import NOW
from tests.factories import auth, create_event, create_org, create_user
from tests.pages import csrf_token, fresh_token, html, prove_number

VICTIM, STRANGER = "13800138000", "13900139000"


@pytest.fixture
def org(ctx):
    return create_org("wyu", county="pengjiang")


def register(client, event, phone: str, name: str = "参与者", **extra):
    response = client.post(f"/api/v1/events/{event.id}/registrations",
                           json={"name": name, "phone": phone, "consent": NOTICE_VERSION, **extra})
    assert response.status_code == 201, response.json
    return response.json


def path(url: str) -> str:
    return url.removeprefix("http://scheduler.test")


def summaries(client, url: str) -> list[str]:
    response = client.get(path(url))
    assert response.status_code == 200, url
    return sorted(str(e["summary"]) for e in Calendar.from_ical(response.data).walk("VEVENT"))


# --- 1. links belong to a registration ---------------------------------------------------------------

def test_registering_with_someone_elses_number_opens_nothing_of_theirs(client, org):
    theirs = create_event(org, publish=True, title="受害者报名的活动")
    mine = create_event(org, publish=True, title="陌生人报名的活动")
    victim = register(client, theirs, VICTIM, "本人", channels=["sms"])
    stranger = register(client, mine, VICTIM, "冒用者")  # the same number, typed by someone else
    # the stranger's links show only the stranger's registration
    assert summaries(client, stranger["calendar"]["url"]) == ["陌生人报名的活动"]
    assert stranger["calendar"]["url"] != victim["calendar"]["url"]
    token = stranger["token"]
    assert client.get(f"/api/v1/registrations/{token}/calendar").json["registration_id"] == stranger["id"]
    # re-issuing or revoking with the stranger's token leaves the owner's link working
    client.post(f"/api/v1/registrations/{token}/calendar")
    client.delete(f"/api/v1/registrations/{token}/calendar")
    assert summaries(client, victim["calendar"]["url"]) == ["受害者报名的活动"]
    # the stranger's data download holds only their registration
    data = client.get(f"/api/v1/registrations/{token}/data").json
    assert data["registration"]["id"] == stranger["id"] and data["event"]["title"] == "陌生人报名的活动"
    assert "受害者报名的活动" not in json.dumps(data, ensure_ascii=False)
    # the stranger's page cannot stop, nor restart, every text to the number
    code = manage_code(stranger["id"])
    page = html(client.get(f"/m/{code}"))
    assert 'value="stop_all"' not in page and 'value="resume_all"' not in page and "受害者报名的活动" not in page
    for action in ("stop_all", "resume_all"):
        answer = client.post(f"/m/{code}", data={"csrf_token": csrf_token(client.get(f"/m/{code}")), "action": action})
        assert answer.status_code == 403
    assert db.session.scalars(select(SmsChoice)).all() == []
    # and /me without the code texted to the phone shows only the form to prove the number
    assert "受害者报名的活动" not in html(client.get("/me"))


def test_the_owners_stop_all_cannot_be_undone_by_a_stranger(client, org):
    event = create_event(org, publish=True)
    owner = register(client, event, VICTIM, channels=["sms"])
    other = create_event(org, publish=True, title="另一场")
    stranger = register(client, other, VICTIM)
    owner_browser, stranger_browser = client, client.application.test_client()
    prove_number(owner_browser, VICTIM)
    code = manage_code(owner["id"])
    owner_browser.post(f"/m/{code}", data={"csrf_token": csrf_token(owner_browser.get(f"/m/{code}")), "action": "stop_all"})
    theirs = manage_code(stranger["id"])
    fresh_token()  # each browser its own CSRF token
    undo = stranger_browser.post(f"/m/{theirs}", data={"csrf_token": csrf_token(stranger_browser.get(f"/m/{theirs}")), "action": "resume_all"})
    assert undo.status_code == 403
    assert [c.opted_out for c in db.session.scalars(select(SmsChoice))] == [True]


def test_a_cancelled_registrations_token_opens_no_calendar(client, org):
    event = create_event(org, publish=True)
    created = register(client, event, VICTIM)
    client.delete(f"/api/v1/registrations/{created['token']}")
    assert client.get(path(created["calendar"]["url"])).status_code == 404
    for method in ("get", "post", "delete"):
        assert getattr(client, method)(f"/api/v1/registrations/{created['token']}/calendar").status_code == 404
    page = html(client.get(f"/m/{manage_code(created['id'])}"))
    assert "此报名已取消" in page and "calendar_new" not in page and "stop_event" not in page
    assert "erase" in page  # the participant may still download and erase


# --- 3. consent, and nothing collected by default ----------------------------------------------------

def test_consent_is_recorded_and_no_channel_is_chosen_by_default(client, org):
    event = create_event(org, publish=True)
    created = register(client, event, VICTIM)
    listed = client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(create_user("editor", org))).json["items"][0]
    assert listed["consent_version"] == NOTICE_VERSION
    assert dt.datetime.fromisoformat(listed["consented_at"]) == NOW
    assert listed["channels"] == [] and "email" not in listed
    assert created["phone_verified"] is False
    notice = client.get("/api/v1/privacy").json
    assert notice == {"version": NOTICE_VERSION, "url": "http://scheduler.test/privacy", "verify_phone": False}


def test_the_privacy_notice_in_both_languages(client, org):
    chinese = html(client.get("/privacy"))
    assert "隐私声明" in chinese and "365 天后" in chinese and "阿里云或腾讯云" in chinese
    english = html(client.get("/privacy?lang=en"))
    assert "Privacy notice" in english and "365 days after the event ends" in english
    event = create_event(org, publish=True)
    form = html(client.get(f"/events/{event.id}"))
    assert 'href="/privacy"' in form and 'name="consent"' in form
    assert not re.search(r'name="channels" value="sms" checked', form)  # no reminder chosen for anyone


# --- 5. access and erasure by the participant -----------------------------------------------------

def test_erasing_from_the_private_token_frees_the_seat_and_kills_the_links(client, org):
    event = create_event(org, publish=True, capacity=1)
    seated = register(client, event, VICTIM, "本人")
    waiting = register(client, event, STRANGER, "候补")
    assert waiting["status"] == "waitlisted"
    erased = client.delete(f"/api/v1/registrations/{seated['token']}/data")
    assert erased.json == {"erased": 1, "promoted": 1}
    db.session.expire_all()
    row = db.session.get(Registration, seated["id"])
    assert (row.name, row.phone, row.phone_hash, row.status) == (None, None, None, "cancelled")
    assert db.session.get(Registration, waiting["id"]).status == "registered"
    assert client.get(f"/api/v1/registrations/{seated['token']}/data").status_code == 404
    assert client.get(path(seated["calendar"]["url"])).status_code == 404
    assert client.get(f"/m/{manage_code(seated['id'])}").status_code == 404
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "registration.erase")).one()
    assert entry.actor == "participant" and entry.subject == f"registration:{seated['id']}"
    assert "13800138000" not in json.dumps(entry.detail)


def test_the_registration_page_downloads_and_erases(client, org):
    event = create_event(org, publish=True, capacity=1)
    mine = register(client, event, VICTIM, "本人")
    waiting = register(client, event, STRANGER, "候补")
    code = manage_code(mine["id"])
    download = client.get(f"/m/{code}/data.json")
    assert download.headers["Content-Disposition"].startswith("attachment") and download.headers["Cache-Control"] == "no-store"
    assert download.json["registration"]["phone"] == "+8613800138000"
    token = csrf_token(client.get(f"/m/{code}"))
    unconfirmed = client.post(f"/m/{code}/erase", data={"csrf_token": token})
    assert unconfirmed.status_code == 302 and db.session.get(Registration, mine["id"]).name == "本人"
    assert client.post(f"/m/{code}/erase", data={"confirm": "yes"}).status_code == 400  # no CSRF token
    done = client.post(f"/m/{code}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/events/{event.id}")
    db.session.expire_all()
    assert db.session.get(Registration, mine["id"]).anonymized_at is not None
    assert db.session.get(Registration, waiting["id"]).status == "registered"


def test_a_proved_number_sees_downloads_and_erases_all_its_registrations(client, org):
    first = create_event(org, publish=True, title="第一场", capacity=1)
    second = create_event(org, publish=True, title="第二场")
    elsewhere = create_event(org, publish=True, title="别人的活动")
    register(client, first, VICTIM, "本人", channels=["sms"])
    register(client, second, VICTIM, "本人")
    register(client, elsewhere, STRANGER, "别人")
    waiting = register(client, first, STRANGER, "候补")
    # prove the number through the page: the code goes by text
    OUTBOX.clear()
    prove_form = html(client.get("/me"))
    assert 'name="phone"' in prove_form and "第一场" not in prove_form
    token = csrf_token(client.get("/me"))
    sent = html(client.post("/me/code", data={"csrf_token": token, "phone": VICTIM}))
    verification_id = re.search(r'name="verification_id" value="([^"]+)"', sent)[1]
    code = re.search(r"验证码为(\d{6})", OUTBOX[-1][1])[1]
    wrong = client.post("/me/verify", data={"csrf_token": token, "phone": VICTIM, "verification_id": verification_id,
                                            "code": "000000" if code != "000000" else "111111"})
    assert "验证码错误" in html(wrong, 422)
    right = client.post("/me/verify", data={"csrf_token": token, "phone": VICTIM, "verification_id": verification_id, "code": code})
    assert right.status_code == 303
    page = html(client.get("/me"))
    assert "第一场" in page and "第二场" in page and "别人的活动" not in page
    calendar = re.search(r'href="(http://scheduler\.test/calendars/personal/pp_[^"]+\.ics)"', page)[1]
    assert summaries(client, calendar) == ["第一场", "第二场"]
    data = client.get("/me/data.json").json
    assert sorted(r["event"]["title"] for r in data["registrations"]) == ["第一场", "第二场"]
    # stop every text to the number, then erase everything
    client.post("/me", data={"csrf_token": token, "action": "stop_all"})
    assert [c.opted_out for c in db.session.scalars(select(SmsChoice))] == [True]
    client.post("/me/erase", data={"csrf_token": token, "confirm": "yes"})
    db.session.expire_all()
    assert db.session.scalars(select(Registration).where(Registration.phone == "+8613800138000")).all() == []
    assert db.session.get(Registration, waiting["id"]).status == "registered"
    assert client.get(path(calendar)).status_code == 404
    assert [c.opted_out for c in db.session.scalars(select(SmsChoice))] == [True]  # the stop outlives the data
    # leaving forgets the proof in this browser
    client.post("/me", data={"csrf_token": token, "action": "leave"})
    assert 'name="phone"' in html(client.get("/me"))


def test_a_proof_lasts_thirty_minutes(client, org, clock):
    event = create_event(org, publish=True, title="第一场")
    register(client, event, VICTIM)
    prove_number(client, VICTIM)
    assert "第一场" in html(client.get("/me"))
    clock.advance(minutes=31)
    assert "第一场" not in html(client.get("/me"))
    assert client.get("/me/data.json").status_code == 404


def test_a_persons_link_purged_and_made_again_is_a_new_link(client, org, clock):
    from scheduler.feeds import personal
    from scheduler.feeds.models import PersonalCalendar
    from scheduler.util.phone import phone_key

    key = phone_key("+8613800138000")
    first = personal.person_token(key)
    personal.revoke_person_token(key)
    clock.advance(days=400)
    db.session.execute(db.delete(PersonalCalendar))  # the purge drops a calendar whose registrations are gone
    again = personal.person_token(key)
    db.session.commit()
    assert again != first
    assert client.get(f"/calendars/personal/{first}.ics").status_code == 404
    assert client.get(f"/calendars/personal/{again}.ics").status_code == 200


def test_the_notice_says_what_is_kept_when_nothing_is_purged(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTRATION_RETENTION_DAYS", 0)
    page = html(client.get("/privacy?lang=en"))
    assert "kept until you erase them" in page and "0 days" not in page
