"""The audit log: who read or exported personal data, erased it, or changed roles or endpoints;
when and from where; visible to administrators only, never with a full phone number."""
from __future__ import annotations

import datetime as dt
import json
import re

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


def no_full_number(text: str) -> None:
    """No 11-digit run of the number, however its digits were spaced or hyphenated."""
    assert PHONE not in re.sub(r"(?<=\d)[\s-](?=\d)", "", text)


def no_full_numbers() -> None:
    for entry in entries():
        no_full_number(json.dumps([entry.actor, entry.subject, entry.detail], ensure_ascii=False))


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


# --- what is recorded ------------------------------------------------------------------------------

def test_an_editors_read_is_recorded_even_when_it_shows_no_one(client, city, event):
    editor = create_user(Role.EDITOR, city["xinhui"])
    assert client.get(f"/api/v1/events/{event.id}/registrations?status=waitlisted", headers=auth(editor)).json["items"] == []
    assert [e.detail for e in entries("registrations.read")] == [{"shown": 0, "api": True}]


def test_a_viewers_page_is_not_recorded_but_their_export_is_with_masked_numbers(client, city, event):
    viewer = create_user(Role.VIEWER, city["xinhui"])
    signed_in(client, viewer)
    page = html(client.get(f"/organizer/events/{event.id}/registrations"))
    assert PHONE not in page and entries("registrations.read") == []
    sheet = client.get(f"/organizer/events/{event.id}/registrations.csv")
    assert sheet.status_code == 200 and PHONE not in sheet.get_data(as_text=True)
    [export] = entries("registrations.export")
    assert (export.actor, export.detail) == (viewer.email, {"rows": 1, "numbers": "masked"})


def test_searching_the_page_by_a_full_number_leaves_no_number_in_the_log(client, city, event):
    signed_in(client, create_user(Role.EDITOR, city["xinhui"]))
    for typed in (PHONE, "138 0013 8000", "+86 138-0013-8000"):
        assert PHONE in html(client.get(f"/organizer/events/{event.id}/registrations", query_string={"q": typed}))
    assert [e.detail for e in entries("registrations.read")] == [{"shown": 1, "search": True}] * 3
    no_full_numbers()


def test_an_erasure_on_request_is_in_the_log_with_the_number_masked(client, city, event):
    manager, admin = create_user(Role.MANAGER, city["xinhui"]), create_user(None, admin=True)
    erased = client.post("/api/v1/erasures", json={"phone": "138 0013 8000", "confirm": True, "note": "申请编号 2024-017"},
                         headers=auth(manager))
    assert erased.status_code == 200 and erased.json["erased"] == 1
    listed = client.get("/api/v1/audit?action=registrations.erase", headers=auth(admin))
    [item] = listed.json["items"]
    assert item["actor"] == manager.email and item["subject"].startswith("phone:") and "****" in item["subject"]
    no_full_number(listed.get_data(as_text=True))
    no_full_numbers()
    signed_in(client, admin)
    page = html(client.get("/organizer/audit"))
    assert "应申请删除报名" in page and manager.email in page
    no_full_number(page)


def test_endpoint_pages_record_what_really_changed_and_never_a_robots_key_or_secret(client, city):
    from tests.test_pages_endpoints import DINGTALK, DINGTALK_SECRET, DINGTALK_TOKEN, URL, post

    editor = create_user(Role.EDITOR, city["xinhui"])
    signed_in(client, editor)
    assert post(client, "/organizer/endpoints/new", org="xinhui", kind="webhook", url=URL, description="合作方").status_code == 200
    [created] = entries("endpoint.create")
    path = f"/organizer/endpoints/{created.subject.split(':')[1]}"
    assert post(client, path, description="合作方").status_code == 303  # the form sends every field: nothing changed
    assert entries("endpoint.update") == []
    assert post(client, path, description="合作方的系统", types=["event.cancelled"]).status_code == 303
    assert entries("endpoint.update")[0].detail["changed"] == ["description", "types"]
    assert post(client, f"{path}/disable").status_code == 303 and post(client, f"{path}/enable").status_code == 303
    assert post(client, f"{path}/rotate").status_code == 200
    assert post(client, f"{path}/delete").status_code == 303

    assert post(client, "/organizer/endpoints/new", org="xinhui", kind="dingtalk", url=DINGTALK, secret=DINGTALK_SECRET).status_code == 303
    robot = entries("endpoint.create")[-1]
    robot_path = f"/organizer/endpoints/{robot.subject.split(':')[1]}"
    assert post(client, robot_path, secret="SECnew0123456789", description="").status_code == 303
    assert post(client, robot_path, url=DINGTALK.replace("c2a5", "d3b6"), description="").status_code == 303
    secret_change, url_change = entries("endpoint.update")[-2:]
    assert secret_change.detail["changed"] == ["secret"]
    assert url_change.detail["changed"] == ["url"] and "previous_url" in url_change.detail

    assert [e.action for e in entries() if e.action.startswith("endpoint.")] == [
        "endpoint.create", "endpoint.update", "endpoint.disable", "endpoint.enable", "endpoint.rotate", "endpoint.delete",
        "endpoint.create", "endpoint.update", "endpoint.update"]
    stored = json.dumps([[e.subject, e.detail] for e in entries()], ensure_ascii=False)
    for secret in (DINGTALK_TOKEN, DINGTALK_TOKEN.replace("c2a5", "d3b6"), DINGTALK_SECRET, "SECnew0123456789", "whsec_"):
        assert secret not in stored
    assert all(e.actor == editor.email and e.ip == "127.0.0.1" for e in entries() if e.action.startswith("endpoint."))


def test_a_role_change_is_recorded_and_setting_the_same_role_again_is_not(runner, city):
    from scheduler.auth.operations import set_membership

    user = create_user(Role.VIEWER, city["xinhui"])
    set_membership(user, city["xinhui"], Role.VIEWER)
    set_membership(user, city["xinhui"], Role.MANAGER)
    db.session.commit()
    assert [e.detail for e in entries("membership.set")] == [
        {"email": user.email, "role": "viewer", "before": None}, {"email": user.email, "role": "manager", "before": "viewer"}]
    result = runner.invoke(args=["user", "create", "root@example.org", "--admin", "--password", "p" * 12])
    assert result.exit_code == 0, result.output
    assert entries("user.create")[-1].detail == {"email": "root@example.org", "admin": True}


# --- reading the log ---------------------------------------------------------------------------------

CST = dt.timezone(dt.timedelta(hours=8))


def log_at(clock, when: dt.datetime, action: str, actor: str = "a@example.org", **detail) -> None:
    from scheduler.audit.operations import record

    clock.set(when)
    record(action, "event:1", actor=actor, detail=detail)
    db.session.commit()


def test_the_api_pages_newest_first_and_reads_periods_with_their_offsets(client, ctx, clock):
    admin = create_user(None, admin=True)
    for hour in range(5):
        log_at(clock, dt.datetime(2024, 6, 15, 20 + hour // 2, 30 * (hour % 2), tzinfo=CST), "registrations.export", n=hour)
    headers = auth(admin)
    first = client.get("/api/v1/audit?action=registrations.export&per_page=2", headers=headers).json
    second = client.get("/api/v1/audit?action=registrations.export&per_page=2&page=2", headers=headers).json
    assert [i["detail"]["n"] for i in first["items"] + second["items"]] == [4, 3, 2, 1] and first["total"] == 5
    window = client.get("/api/v1/audit", query_string={"action": "registrations.export", "since": "2024-06-15T21:00:00+08:00",
                                                       "until": "2024-06-15T13:30:00Z"}, headers=headers).json
    assert [i["detail"]["n"] for i in window["items"]] == [2]  # since included, until excluded
    for bad in ({"since": "2024-06-15T21:00:00"}, {"until": "9999-12-31T23:59:59+08:00"}, {"per_page": "1000"}, {"page": "0"},
                {"user": "a\x00b"}):
        assert client.get("/api/v1/audit", query_string=bad, headers=headers).status_code == 422, bad


def test_the_page_filters_by_action_actor_and_local_day_and_shows_50_a_page(app, client, ctx, clock):
    late = dt.datetime(2024, 6, 15, 23, 30, tzinfo=CST)  # 15:30 UTC: the 15th in Jiangmen
    log_at(clock, late, "endpoint.delete", actor="b@example.org")
    log_at(clock, late + dt.timedelta(minutes=40), "endpoint.create", actor="b@example.org")  # the 16th, 00:10
    for n in range(51):
        log_at(clock, dt.datetime(2024, 6, 10, 9, tzinfo=CST) + dt.timedelta(minutes=n), "registrations.read", shown=n)
    signed_in(client, create_user(None, admin=True))

    def rows(query: str) -> list[str]:
        return re.findall(r"<tr><td><time datetime=\"([^\"]+)\"", html(client.get("/organizer/audit?" + query)))

    assert rows("from=2024-06-15&to=2024-06-15") == ["2024-06-15T23:30:00+08:00"]
    assert rows("from=2024-06-16") == ["2024-06-16T00:10:00+08:00"]
    assert rows("action=endpoint.create&actor=B@example.org") == ["2024-06-16T00:10:00+08:00"]
    first = html(client.get("/organizer/audit?action=registrations.read"))
    assert len(rows("action=registrations.read")) == 50 and "shown: 50" in first and "shown: 0" not in first
    assert 'href="/organizer/audit?action=registrations.read&amp;page=2"' in first
    assert rows("action=registrations.read&page=2") == ["2024-06-10T09:00:00+08:00"]
    assert "2024年6月15日 23:30" in html(client.get("/organizer/audit?from=2024-06-15&to=2024-06-15"))
    for odd in ("to=9999-12-31", "from=0001-01-01", "from=2024-13-01", "page=x", "page=-3", "actor=%00", "action=<b>"):
        assert "<b>" not in html(client.get("/organizer/audit?" + odd)), odd


def test_the_page_is_labelled_and_translated(client, ctx, clock):
    from tests.walker import PageParser

    log_at(clock, dt.datetime(2024, 6, 15, 9, tzinfo=CST), "registrations.export", rows=3)
    signed_in(client, create_user(None, admin=True))
    for lang, label in (("zh", "导出报名名单（CSV）"), ("en", "Registrations exported (CSV)")):
        client.set_cookie("lang", lang)
        page = html(client.get("/organizer/audit"))
        parser = PageParser("/organizer/audit")
        parser.feed(page)
        assert parser.unlabelled() == [] and parser.headings == [1, 2, 2], lang
        assert label in page and f'<html lang="{lang}' in page
