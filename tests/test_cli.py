"""The ``flask`` commands: demo plan, users, tokens."""
import re

from sqlalchemy import func, select

from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.registrations.models import Registration
from scheduler.targets.models import Target


def test_seed_demo_loads_a_plan_in_progress(runner, client):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Administrator: admin@example.org\s+password: \S{12,}", result.output)
    assert db.session.scalar(select(func.count()).select_from(Organization)) == 16
    assert db.session.scalar(select(Organization.name_zh).where(Organization.slug == "neutrino-lab")) == "江门中微子实验室"
    events = db.session.scalars(select(Event)).all()
    assert {e.kind for e in events} == {"science_carnival", "tech_week", "study_tour", "matchmaking", "contest"}
    assert {"draft", "published", "completed", "cancelled"} <= {e.status for e in events}
    assert any(e.outcome and e.outcome.achievements_matched for e in events)
    assert db.session.scalar(select(func.count()).select_from(Registration)) > 0
    assert {t.year for t in db.session.scalars(select(Target))} == {2024}  # the clock says 2024
    progress = {t["key"]: t for t in client.get("/api/v1/progress").json["targets"]}
    popularization = progress["popularization_events"]
    assert 0 < popularization["achieved"] < popularization["target"]
    assert popularization["scheduled"] > 0
    waitlisted = client.get("/api/v1/events?kind=study_tour").json["items"]
    assert any(e["waitlisted"] for e in waitlisted)


def test_seed_demo_twice_changes_nothing(runner):
    runner.invoke(args=["seed-demo"])
    count = db.session.scalar(select(func.count()).select_from(Event))
    again = runner.invoke(args=["seed-demo"])
    assert "password" not in again.output  # the admin exists: no new password
    assert db.session.scalar(select(func.count()).select_from(Event)) == count
    assert "not loaded" in runner.invoke(args=["seed-demo", "--if-empty"]).output


def test_user_and_token_commands(runner, client):
    runner.invoke(args=["seed-demo"])
    created = runner.invoke(args=["user", "create", "Editor@Xinhui.example", "--org", "xinhui", "--role", "editor"])
    assert created.exit_code == 0, created.output
    assert "Password:" in created.output
    token = runner.invoke(args=["token", "create", "editor@xinhui.example"]).output.strip()
    assert token.startswith("sst_")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"kind": "science_carnival", "title": "新会科普日", "org": "xinhui", "starts_at": "2024-09-01T09:00:00+08:00"}
    assert client.post("/api/v1/events", json=body, headers=headers).status_code == 201
    body["org"] = "taishan"
    assert client.post("/api/v1/events", json=body, headers=headers).status_code == 403
    listing = runner.invoke(args=["token", "list", "editor@xinhui.example"]).output
    assert token[:12] in listing and "active" in listing
    assert runner.invoke(args=["token", "revoke", token[:12]]).exit_code == 0
    assert client.get("/api/v1/events", headers=headers).status_code == 401


def test_user_create_errors(runner):
    runner.invoke(args=["seed-demo"])
    assert runner.invoke(args=["user", "create", "a@example.org"]).exit_code != 0  # neither --org nor --admin
    assert "no organization" in runner.invoke(args=["user", "create", "a@example.org", "--org", "nope"]).output
    assert runner.invoke(args=["user", "create", "admin@example.org", "--admin"]).exit_code != 0  # exists
    assert runner.invoke(args=["token", "create", "nobody@example.org"]).exit_code != 0
