"""The audit log: who read or exported personal data, erased it, or changed roles or endpoints;
when and from where; visible to administrators only, never with a full phone number."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from scheduler.audit.models import AuditEntry
from scheduler.auth.models import Role
from scheduler.extensions import db
from scheduler.privacy.notice import NOTICE_VERSION
from tests.factories import auth, create_city, create_event, create_user
from tests.pages import html, signed_in

PHONE = "13800138000"


@pytest.fixture
def city(ctx):
    return create_city()


@pytest.fixture
def event(client, city):
    event = create_event(city["xinhui"], publish=True)
    response = client.post(f"/api/v1/events/{event.id}/registrations", json={"name": "张三", "phone": PHONE, "consent": NOTICE_VERSION})
    assert response.status_code == 201
    return event


def entries(action: str | None = None) -> list[AuditEntry]:
    db.session.expire_all()
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    return list(db.session.scalars(stmt.where(AuditEntry.action == action) if action else stmt))


def no_full_numbers() -> None:
    for entry in entries():
        assert PHONE not in json.dumps([entry.subject, entry.detail], ensure_ascii=False), entry.action


def test_reading_full_numbers_through_the_api_is_recorded_and_masked_reads_are_not(client, city, event):
    viewer, editor = create_user(Role.VIEWER, city["xinhui"]), create_user(Role.EDITOR, city["xinhui"])
    client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(viewer))
    assert entries("registrations.read") == []
    client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(editor))
    [entry] = entries("registrations.read")
    assert (entry.actor, entry.user_id, entry.subject, entry.org_id, entry.ip) == (
        editor.email, editor.id, f"event:{event.id}", city["xinhui"].id, "127.0.0.1")
    assert entry.detail == {"shown": 1, "api": True}
    no_full_numbers()


def test_the_registrations_page_and_its_csv_are_recorded(client, city, event):
    editor = create_user(Role.EDITOR, city["xinhui"])
    signed_in(client, editor)
    html(client.get(f"/organizer/events/{event.id}/registrations"))
    client.get(f"/organizer/events/{event.id}/registrations.csv")
    assert [e.action for e in entries() if e.action.startswith("registrations.")] == ["registrations.read", "registrations.export"]
    assert entries("registrations.export")[0].detail == {"rows": 1, "numbers": "full"}
    no_full_numbers()


def test_endpoint_changes_are_recorded_without_their_secrets(client, city):
    editor = create_user(Role.EDITOR, city["xinhui"])
    headers = auth(editor)
    created = client.post("/api/v1/webhooks", json={"url": "https://partner.example.org/hooks"}, headers=headers).json
    path = f"/api/v1/webhooks/{created['id']}"
    client.patch(path, json={"description": "合作方"}, headers=headers)
    client.patch(path, json={"enabled": False}, headers=headers)
    rotated = client.post(f"{path}/rotate", headers=headers).json
    assert rotated["secret"].startswith("whsec_")
    client.delete(path, headers=headers)
    assert [e.action for e in entries() if e.action.startswith("endpoint.")] == [
        "endpoint.create", "endpoint.update", "endpoint.disable", "endpoint.rotate", "endpoint.delete"]
    assert entries("endpoint.update")[0].detail["changed"] == ["description"]
    stored = json.dumps([e.detail for e in entries()])
    assert created["secret"] not in stored and rotated["secret"] not in stored
    assert all(e.actor == editor.email for e in entries() if e.action.startswith("endpoint."))


def test_role_changes_from_the_command_line_are_recorded(runner, city):
    result = runner.invoke(args=["user", "create", "new@example.org", "--org", "xinhui", "--role", "editor", "--password", "p" * 12])
    assert result.exit_code == 0, result.output
    created, membership = entries("user.create"), entries("membership.set")
    assert created[0].actor == "system" and created[0].detail["email"] == "new@example.org"
    assert membership[0].detail == {"email": "new@example.org", "role": "editor", "before": None}


def test_the_api_is_for_administrators_only_and_filters(client, city, event):
    editor, admin = create_user(Role.EDITOR, city["xinhui"]), create_user(None, admin=True)
    client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(editor))
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=auth(create_user(Role.MANAGER, city["bureau"]))).status_code == 403
    listed = client.get("/api/v1/audit?action=registrations.", headers=auth(admin)).json
    assert [item["action"] for item in listed["items"]] == ["registrations.read"]
    assert listed["items"][0]["org"] == "xinhui" and listed["items"][0]["ip"] == "127.0.0.1"
    assert client.get(f"/api/v1/audit?user={editor.email}", headers=auth(admin)).json["total"] >= 1
    assert client.get("/api/v1/audit?user=nobody@example.org", headers=auth(admin)).json["total"] == 0
    later = client.get("/api/v1/audit", query_string={"since": "2030-01-01T00:00:00+08:00"}, headers=auth(admin)).json
    assert later["total"] == 0
    assert client.get("/api/v1/audit?since=yesterday", headers=auth(admin)).status_code == 422


def test_the_page_is_for_administrators_only(app, client, city, event):
    manager = create_user(Role.MANAGER, city["bureau"])
    assert client.get("/organizer/audit").status_code == 302  # sign in first
    signed_in(client, manager)
    assert client.get("/organizer/audit").status_code == 403
    assert "/organizer/audit" not in html(client.get("/organizer"))
    fresh = app.test_client()
    signed_in(fresh, create_user(None, admin=True))
    client.get(f"/api/v1/events/{event.id}/registrations", headers=auth(create_user(Role.EDITOR, city["xinhui"])))
    page = html(fresh.get("/organizer/audit?action=registrations.read"))
    assert 'href="/organizer/audit"' in page and "查看完整号码的报名名单" in page and "127.0.0.1" in page
    assert PHONE not in page
