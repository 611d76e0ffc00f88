"""Managers erase a person's registrations on request, by phone number (API and page): a freed seat
goes to the waitlist as on a cancellation, other organizations' registrations are never touched,
and neither the page nor the audit log shows the full number."""
from __future__ import annotations

import json
import re

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler.api.errors import Forbidden, Invalid
from scheduler.audit.models import AuditEntry
from scheduler.auth.models import Role
from scheduler.extensions import db
from scheduler.privacy.erasure import erase_for_request, find_for_erasure
from scheduler.registrations.models import Registration
from scheduler.reminders.models import Delivery
from scheduler.util.ids import hash_secret, new_secret
from scheduler.util.phone import phone_key
from scheduler.util.time import now
from tests.factories import auth, create_city, create_event, create_user
from tests.pages import csrf_token, fresh_token, html, session_token, signed_in

ASKING = "+8613800138000"  # the person asking for erasure
ASKING_TYPED = "138 0013 8000"
WAITING = "+8613900139000"


def add_registration(event, phone: str, *, name: str = "张三", status: str = "registered") -> Registration:
    """A registration inserted as a row (the public flow is being changed elsewhere)."""
    moment = now()
    registration = Registration(
        event_id=event.id, name=name, phone=phone, phone_hash=phone_key(phone), channels=["sms"], status=status,
        token_hash=hash_secret(new_secret("r_", 24)), created_at=moment, seated_at=moment if status == "registered" else None,
    )
    db.session.add(registration)
    db.session.commit()
    return registration


@pytest.fixture
def world(ctx, clock):
    """Xinhui's tour (1 seat: the asker holds it, 李四 waits) and Kaiping's carnival the asker registered for too."""
    city = create_city()
    tour = create_event(city["xinhui"], publish=True, capacity=1, title="新会研学")
    carnival = create_event(city["kaiping"], publish=True, title="开平科技嘉年华")
    seated = add_registration(tour, ASKING)
    clock.advance(minutes=1)
    waiting = add_registration(tour, WAITING, name="李四", status="waitlisted")
    elsewhere = add_registration(carnival, ASKING)
    users = {
        "manager": create_user(Role.MANAGER, city["xinhui"]),
        "editor": create_user(Role.EDITOR, city["xinhui"]),
        "viewer": create_user(Role.VIEWER, city["xinhui"]),
        "other_manager": create_user(Role.MANAGER, city["kaiping"]),
        "bureau_manager": create_user(Role.MANAGER, city["bureau"]),
        "admin": create_user(None, admin=True),
    }
    return {"city": city, "tour": tour, "carnival": carnival, "seated": seated, "waiting": waiting,
            "elsewhere": elsewhere, **users}


def fresh(registration: Registration) -> Registration:
    db.session.expire_all()
    return db.session.get(Registration, registration.id)


def erasures(client, user, **body):
    return client.post("/api/v1/erasures", json=body, headers=auth(user))


def no_full_number(text: str) -> None:
    assert "13800138000" not in text and "138 0013 8000" not in text


# --- the API ---------------------------------------------------------------------------------------------


def test_without_confirm_only_shows_what_matches(client, world):
    response = erasures(client, world["manager"], phone=ASKING_TYPED)
    assert response.status_code == 200
    body = response.json
    assert body["phone"] == "+86 138****8000" and (body["erased"], body["promoted"]) == (0, 0)
    assert [(m["event_id"], m["event_title"], m["org"], m["status"]) for m in body["matches"]] == [
        (world["tour"].id, "新会研学", "xinhui", "registered")]
    assert fresh(world["seated"]).name == "张三"  # nothing erased
    no_full_number(response.get_data(as_text=True))


def test_confirmed_erasure_frees_the_seat_for_the_waitlist_and_leaves_other_organizations_alone(client, world):
    response = erasures(client, world["manager"], phone=ASKING_TYPED, confirm=True, note="申请编号 2024-017")
    assert response.status_code == 200
    assert (response.json["erased"], response.json["promoted"]) == (1, 1)

    seated, waiting, elsewhere = fresh(world["seated"]), fresh(world["waiting"]), fresh(world["elsewhere"])
    assert (seated.name, seated.phone, seated.phone_hash, seated.status) == (None, None, None, "cancelled")
    assert seated.anonymized_at is not None
    assert waiting.status == "registered" and waiting.promoted_at is not None  # 李四 got the seat …
    assert db.session.scalar(select(Delivery).where(Delivery.registration_id == waiting.id,
                                                    Delivery.type == "registration.promoted")) is not None  # … and is told
    assert (elsewhere.name, elsewhere.phone, elsewhere.status) == ("张三", ASKING, "registered")  # Kaiping's: untouched

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "registrations.erase")).one()
    assert entry.subject == "phone:+86 138****8000" and entry.user_id == world["manager"].id
    assert entry.detail == {"count": 1, "event_ids": [world["tour"].id], "promoted": 1, "note": "申请编号 2024-017"}
    assert entry.org_id == world["city"]["xinhui"].id
    no_full_number(json.dumps([entry.subject, entry.detail, entry.actor], ensure_ascii=False))

    again = erasures(client, world["manager"], phone=ASKING, confirm=True)  # nothing left with that number here
    assert (again.json["erased"], again.json["matches"]) == (0, [])


def test_managers_above_and_administrators_reach_every_organization_below(client, world):
    for who in ("bureau_manager", "admin"):
        found = erasures(client, world[who], phone=ASKING).json["matches"]
        assert sorted(m["org"] for m in found) == ["kaiping", "xinhui"]
    assert erasures(client, world["admin"], phone=ASKING, confirm=True).json["erased"] == 2


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_editors_and_viewers_may_not_erase(client, world, who):
    for confirm in (False, True):
        response = erasures(client, world[who], phone=ASKING, confirm=confirm)
        assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    assert erasures(client, world[who], phone="12345").status_code == 403  # refused before the number is even read
    assert fresh(world["seated"]).name == "张三"


def test_a_manager_of_another_organization_neither_sees_nor_erases_ours(client, world):
    found = erasures(client, world["other_manager"], phone=ASKING).json["matches"]
    assert [m["event_id"] for m in found] == [world["carnival"].id]
    response = erasures(client, world["other_manager"], phone=ASKING, confirm=True)
    assert (response.json["erased"], response.json["promoted"]) == (1, 0)
    assert fresh(world["seated"]).name == "张三" and fresh(world["waiting"]).status == "waitlisted"
    assert fresh(world["elsewhere"]).name is None


def test_bad_requests(client, world):
    assert client.post("/api/v1/erasures", json={"phone": ASKING}).status_code == 401
    invalid = erasures(client, world["manager"], phone="12345", confirm=True)
    assert invalid.status_code == 422 and "phone" in invalid.json["error"]["fields"]
    assert erasures(client, world["manager"], phone=ASKING, confirm="yes").status_code == 422  # strict: a boolean
    assert erasures(client, world["manager"], phone=ASKING, everything=True).status_code == 422
    assert erasures(client, world["manager"], phone=ASKING, note="x" * 201).status_code == 422
    assert fresh(world["seated"]).name == "张三"


def test_the_operation_itself_refuses_what_the_user_does_not_manage(world):
    assert [r.id for r in find_for_erasure(world["manager"], ASKING_TYPED)] == [world["seated"].id]
    with pytest.raises(Forbidden):
        erase_for_request(world["manager"], [world["seated"], world["elsewhere"]])  # Kaiping's is not theirs
    with pytest.raises(Invalid):
        erase_for_request(world["admin"], [world["seated"], world["waiting"]])  # two people's numbers
    with pytest.raises(Forbidden):
        find_for_erasure(world["editor"], ASKING)
    db.session.rollback()
    assert fresh(world["seated"]).name == fresh(world["elsewhere"]).name == "张三"
    assert fresh(world["waiting"]).status == "waitlisted"


# --- the page --------------------------------------------------------------------------------------------


class Browser(FlaskClient):
    """A test client whose requests start afresh, as in production: the ``ctx`` fixture's application
    context is shared by every client, and Flask-Login and Flask-WTF keep the signed-in user and the
    CSRF token of the previous request (maybe another client's) in its ``g``."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        fresh_token()
        return super().open(*args, **kwargs)


def browser(app, user=None) -> Browser:
    """A new browser, signed in as ``user``, reading English pages."""
    client = Browser(app, app.response_class)
    client.set_cookie("lang", "en")
    return signed_in(client, user) if user else client


def lookup(client, phone: str, note: str = ""):
    token = session_token(client, "/organizer/erasure")
    return client.post("/organizer/erasure", data={"csrf_token": token, "phone": phone, "note": note})


def confirm_form(page) -> dict[str, str]:
    text = page.get_data(as_text=True)
    ticket = re.search(r'name="ticket" type="hidden" value="([^"]+)"', text).group(1)
    return {"csrf_token": csrf_token(page), "ticket": ticket, "confirm": "yes"}


def test_the_page_finds_asks_to_confirm_then_erases(app, world):
    client = browser(app, world["manager"])
    menu = html(client.get("/organizer"))
    assert 'href="/organizer/erasure"' in menu
    form = html(client.get("/organizer/erasure"))
    assert '<label for="erasure-phone">Phone number</label>' in form and 'for="erasure-note"' in form

    found = lookup(client, ASKING_TYPED, note="申请编号 2024-017")
    page = html(found)
    assert "Registrations with +86 138****8000" in page and "新会研学" in page and "开平科技嘉年华" not in page
    assert "Seated" in page and "Erase the registrations shown (1)" in page
    no_full_number(page)
    assert fresh(world["seated"]).name == "张三"  # not yet

    done = client.post("/organizer/erasure", data=confirm_form(found))
    assert done.status_code == 303 and done.headers["Location"].endswith("/organizer/erasure")
    report = html(client.get("/organizer/erasure"))
    assert "Registrations with +86 138****8000 erased: 1. People on a waitlist who got a seat: 1." in report
    assert fresh(world["seated"]).name is None and fresh(world["waiting"]).status == "registered"
    assert fresh(world["elsewhere"]).name == "张三"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "registrations.erase")).one()
    assert entry.detail["note"] == "申请编号 2024-017"


def test_the_page_says_when_nothing_matches_and_refuses_a_bad_number(app, world):
    client = browser(app, world["manager"])
    nothing = html(lookup(client, "13700137000"))
    assert "there is nothing to erase" in nothing and 'name="ticket"' not in nothing
    bad = html(lookup(client, "12345"), 422)
    assert 'id="phone-error"' in bad and 'aria-invalid="true"' in bad and "Give a mobile phone number" in bad


@pytest.mark.parametrize("who", ["editor", "viewer"])
def test_editors_and_viewers_get_no_menu_entry_and_a_403(app, world, who):
    client = browser(app, world[who])
    assert "/organizer/erasure" not in html(client.get("/organizer"))
    assert client.get("/organizer/erasure").status_code == 403
    manager = browser(app, world["manager"])
    ticket = confirm_form(lookup(manager, ASKING))["ticket"]
    token = session_token(client, "/organizer/events")
    assert client.post("/organizer/erasure", data={"csrf_token": token, "ticket": ticket, "confirm": "yes"}).status_code == 403
    assert client.post("/organizer/erasure", data={"csrf_token": token, "phone": ASKING}).status_code == 403
    assert fresh(world["seated"]).name == "张三"


def test_a_ticket_is_good_for_its_user_only_for_a_while_and_never_without_csrf(app, world, clock):
    manager = browser(app, world["manager"])
    form = confirm_form(lookup(manager, ASKING))
    other = browser(app, world["other_manager"])
    refused = "This confirmation is too old or not yours: look the number up again."
    stolen = {**form, "csrf_token": session_token(other, "/organizer/erasure")}
    assert refused in html(other.post("/organizer/erasure", data=stolen), 400)  # not theirs
    forged = {**form, "ticket": form["ticket"][:-2] + ("AA" if not form["ticket"].endswith("AA") else "BB")}
    assert refused in html(manager.post("/organizer/erasure", data=forged), 400)
    assert refused not in html(manager.post("/organizer/erasure", data={**form, "csrf_token": ""}), 400)  # CSRF
    clock.advance(minutes=16)
    assert refused in html(manager.post("/organizer/erasure", data=form), 400)  # too old: look it up again
    assert fresh(world["seated"]).name == "张三" and fresh(world["elsewhere"]).name == "张三"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "registrations.erase")) is None


def test_signed_out_visitors_are_sent_to_sign_in(app, world):
    visitor = browser(app)
    assert visitor.get("/organizer/erasure").status_code == 302
    assert visitor.post("/organizer/erasure", data={"phone": ASKING}).status_code == 400  # no CSRF token, no session
