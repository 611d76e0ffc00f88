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
    assert re.search(r"={20,}\n  User: editor@xinhui.example\n  password: \S{16}\n", created.output)  # framed
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


# -- flask user password: a lost password ---------------------------------------------------------


def framed_password(output: str) -> str:
    """The password a command printed in its frame (fails when there is none)."""
    found = re.search(r"^={20,}\n  User: \S+\n  password: (\S+)\n.*\n={20,}$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_user_password_asks_twice_ends_every_session_and_is_audited(app, client, ctx, caplog):
    from flask import g

    from scheduler.audit.models import AuditEntry
    from scheduler.auth.models import LoginSession
    from tests.factories import create_user
    from tests.pages import sign_in

    user = create_user(admin=True, email="admin@example.org")
    other = app.test_client()
    for browser in (client, other):  # signed in on two machines
        assert sign_in(browser, user.email).status_code == 302
        g.pop("_login_user", None)
    assert client.get("/organizer").status_code == 200
    g.pop("_login_user", None)

    caplog.set_level("DEBUG")
    result = app.test_cli_runner().invoke(args=["user", "password", "Admin@Example.org"],
                                          input="correct horse battery\ncorrect horse battery\n")
    assert result.exit_code == 0, result.output
    assert "2 sign-in sessions ended" in result.output
    assert "correct horse" not in result.output and "correct horse" not in caplog.text  # hidden, never logged
    rows = db.session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)).all()
    assert len(rows) == 2 and all(row.ended_at is not None for row in rows)
    for browser in (client, other):  # neither cookie opens anything any more
        g.pop("_login_user", None)
        assert browser.get("/organizer").status_code == 302
    g.pop("_login_user", None)
    assert sign_in(app.test_client(), user.email).status_code != 302  # the old password is refused
    g.pop("_login_user", None)
    assert sign_in(app.test_client(), user.email, "correct horse battery").status_code == 302

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.password")).one()
    assert (entry.actor, entry.user_id, entry.subject) == ("system", None, f"user:{user.id}")
    assert entry.detail == {"email": "admin@example.org", "generated": False, "sessions_ended": 2, "via": "flask user password"}
    assert "correct horse" not in str(entry.detail) and "password_hash" not in str(entry.detail)


def test_user_password_generate_prints_a_strong_password_framed_on_stdout_only(app, runner, ctx, caplog):
    from tests.factories import create_user
    from tests.pages import sign_in

    user = create_user("editor", email="ed@example.org")
    caplog.set_level("DEBUG")
    result = runner.invoke(args=["user", "password", "ed@example.org", "--generate"])
    assert result.exit_code == 0, result.output
    password = framed_password(result.output)
    assert len(password) >= 20  # 128 random bits
    assert password not in caplog.text
    assert "0 sign-in sessions ended" in result.output
    assert sign_in(app.test_client(), user.email, password).status_code == 302
    again = framed_password(runner.invoke(args=["user", "password", "ed@example.org", "--generate"]).output)
    assert again != password


def test_user_password_refuses_an_unknown_user_a_short_or_mismatched_password(runner, ctx):
    from tests.factories import create_user

    unknown = runner.invoke(args=["user", "password", "nobody@example.org", "--generate"])
    assert unknown.exit_code == 1 and "Error: no user nobody@example.org" in unknown.output
    user = create_user("editor", email="ed@example.org")
    before = user.password_hash
    short = runner.invoke(args=["user", "password", "ed@example.org"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output  # asked again, then input ran out
    mismatch = runner.invoke(args=["user", "password", "ed@example.org"], input="long enough 1\nlong enough 2\n")
    assert mismatch.exit_code != 0 and "do not match" in mismatch.output
    db.session.refresh(user)
    assert user.password_hash == before
