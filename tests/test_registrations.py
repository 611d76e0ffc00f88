"""Registrations: seats, the waitlist and its automatic promotion, private tokens."""
import pytest

from scheduler.privacy.notice import NOTICE_VERSION

from scheduler.extensions import db
from scheduler.registrations.models import Registration
from tests.factories import auth, create_event, create_org, create_user


@pytest.fixture
def org(ctx):
    return create_org("wyu", county="pengjiang")


def register(client, event, phone, name="参与者"):
    return client.post(f"/api/v1/events/{event.id}/registrations", json={"name": name, "phone": phone, "consent": NOTICE_VERSION})


def test_waitlist_and_promotion(client, org):
    event = create_event(org, publish=True, capacity=2)
    first = register(client, event, "13800138001").json
    second = register(client, event, "13800138002").json
    third = register(client, event, "13800138003").json
    fourth = register(client, event, "13800138004").json
    assert [r["status"] for r in (first, second, third, fourth)] == ["registered", "registered", "waitlisted", "waitlisted"]
    assert (third["waitlist_position"], fourth["waitlist_position"]) == (1, 2)
    shown = client.get(f"/api/v1/events/{event.id}").json
    assert (shown["registered"], shown["waitlisted"], shown["seats_left"]) == (2, 2, 0)

    cancelled = client.delete(f"/api/v1/registrations/{first['token']}")
    assert cancelled.json == {"id": first["id"], "status": "cancelled", "promoted": 1}
    statuses = {r.phone: r.status for r in db.session.query(Registration).all()}
    assert statuses["+8613800138003"] == "registered"  # first come, first served
    assert statuses["+8613800138004"] == "waitlisted"
    # the promotion is recorded, even within the second of registering (the clock stands still here)
    listed = client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(create_user("editor", org))).json
    promoted = {r["phone"]: r["promoted_at"] for r in listed["items"]}
    assert promoted["+8613800138003"] is not None
    assert promoted["+8613800138002"] is None and promoted["+8613800138004"] is None


def test_cancelling_a_waitlisted_registration_promotes_nobody(client, org):
    event = create_event(org, publish=True, capacity=1)
    register(client, event, "13800138001")
    waiting = register(client, event, "13800138002").json
    assert client.delete(f"/api/v1/registrations/{waiting['token']}").json["promoted"] == 0


def test_raising_capacity_promotes_the_waitlist(client, org):
    event = create_event(org, publish=True, capacity=1)
    for n in range(1, 4):
        register(client, event, f"1380013800{n}")
    headers = auth(create_user("editor", org))
    shown = client.patch(f"/api/v1/events/{event.id}", json={"capacity": 3}, headers=headers).json
    assert (shown["registered"], shown["waitlisted"]) == (3, 0)


def test_phone_normalised_and_unique(client, org):
    event = create_event(org, publish=True)
    created = register(client, event, "138 0013 8000")
    assert created.status_code == 201
    again = register(client, event, "+86 138-0013-8000")
    assert again.status_code == 409
    assert again.json["error"]["code"] == "not_registered"  # an unproved number learns nothing more
    headers = auth(create_user("editor", org))
    assert client.get(f"/api/v1/events/{event.id}/registrations", headers=headers).json["items"][0]["phone"] == "+8613800138000"


def test_register_again_after_cancelling(client, org):
    event = create_event(org, publish=True)
    token = register(client, event, "13800138000").json["token"]
    client.delete(f"/api/v1/registrations/{token}")
    again = register(client, event, "13800138000")
    assert again.status_code == 201
    assert again.json["token"] != token
    assert client.delete(f"/api/v1/registrations/{token}").status_code == 404  # the old token is dead


def test_token_is_private_and_long(client, org):
    event = create_event(org, publish=True)
    token = register(client, event, "13800138000").json["token"]
    assert len(token) >= 32
    stored = db.session.query(Registration).one()
    assert token not in (stored.token_hash,)
    assert client.delete("/api/v1/registrations/not-a-token").status_code == 404
    assert client.delete(f"/api/v1/registrations/{token}").status_code == 200
    assert client.delete(f"/api/v1/registrations/{token}").status_code == 409


def test_organizer_lists_registrations_with_status(client, org):
    event = create_event(org, publish=True, capacity=1)
    register(client, event, "13800138001", "甲")
    register(client, event, "13800138002", "乙")
    headers = auth(create_user("editor", org))
    listed = client.get(f"/api/v1/events/{event.id}/registrations", headers=headers).json
    assert [(r["name"], r["status"]) for r in listed["items"]] == [("甲", "registered"), ("乙", "waitlisted")]
    waiting = client.get(f"/api/v1/events/{event.id}/registrations?status=waitlisted", headers=headers).json
    assert [r["name"] for r in waiting["items"]] == ["乙"]


def test_registration_is_rate_limited(client, org, app):
    event = create_event(org, publish=True)
    statuses = [register(client, event, f"138001380{n:02d}").status_code for n in range(25)]
    assert statuses.count(201) == 20
    assert statuses[-1] == 429
    limited = register(client, event, "13900139000")
    assert limited.json["error"]["code"] == "too_many_requests"


def test_the_page_and_the_api_share_one_registration_budget(client, org):
    """20 a minute per address in all, whichever route: 20 registrations mixed between the event
    page's form and the API, then the 21st is refused by either route."""
    from tests.pages import csrf_token, fresh_token

    event = create_event(org, publish=True)
    fresh_token()
    token = csrf_token(client.get("/registrations/cancel"))

    def by_page(phone):
        return client.post(f"/events/{event.id}/register", data={
            "csrf_token": token, "name": "陈小明", "phone": phone, "channels": ["sms"], "consent": NOTICE_VERSION})

    statuses = []
    for n in range(20):
        phone = f"138001380{n:02d}"
        statuses.append(by_page(phone).status_code if n % 2 else register(client, event, phone).status_code)
    assert statuses == [201, 303] * 10
    assert register(client, event, "13900139001").status_code == 429
    assert by_page("13900139002").status_code == 429
    assert db.session.query(Registration).count() == 20


def test_removing_the_capacity_seats_everyone_waiting(client, org):
    event = create_event(org, publish=True, capacity=1)
    for n in range(1, 4):
        register(client, event, f"1380013800{n}")
    headers = auth(create_user("editor", org))
    shown = client.patch(f"/api/v1/events/{event.id}", json={"capacity": None}, headers=headers).json
    assert (shown["capacity"], shown["registered"], shown["waitlisted"], shown["seats_left"]) == (None, 3, 0, None)


def test_texts_need_a_mainland_number_when_the_provider_is_domestic(app, client, org):
    event = create_event(org, publish=True)
    body = {"name": "陈大文", "phone": "+85291234567", "channels": ["sms"], "consent": NOTICE_VERSION}
    saved = app.config["SMS_PROVIDER"]
    try:
        app.config["SMS_PROVIDER"] = "aliyun"
        response = client.post(f"/api/v1/events/{event.id}/registrations", json=body)
        assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["phone"]
        assert "mainland" in response.json["error"]["fields"]["phone"]
        app.config["SMS_PROVIDER"] = "http"  # a gateway that reaches Hong Kong
        assert client.post(f"/api/v1/events/{event.id}/registrations", json=body).status_code == 201
    finally:
        app.config["SMS_PROVIDER"] = saved
