"""Webhook and robot secrets are sealed in the database (encrypted with a key outside it): what
is stored never shows the secret, what the app reads is the secret, and keys can be rotated."""
from __future__ import annotations

import flask_migrate
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.orm import Session

from scheduler import create_app
from scheduler.channels.models import WebhookEndpoint
from scheduler.channels.operations import create_endpoint, rotate_secret
from scheduler.extensions import db
from scheduler.util.sealed import PREFIX, SealedSecretUnreadable, derived_key, seal, unseal
from tests.factories import create_city


def stored(endpoint_id: int) -> tuple[str, str | None]:
    row = db.session.execute(text("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = :id"),
                             {"id": endpoint_id}).one()
    return row[0], row[1]


def test_the_database_holds_sealed_secrets_and_the_app_reads_them(ctx):
    org = create_city()["xinhui"]
    endpoint = create_endpoint(org, "https://partner.example/hook")
    dingtalk = create_endpoint(org, "https://oapi.dingtalk.com/robot/send?access_token=abc", kind="dingtalk",
                               secret="SEC" + "a" * 64)
    db.session.commit()
    secret = endpoint.secret
    raw, _ = stored(endpoint.id)
    assert secret.startswith("whsec_") and raw.startswith(PREFIX) and secret not in raw
    assert "a" * 64 not in stored(dingtalk.id)[0]
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).secret == secret
    assert db.session.get(WebhookEndpoint, dingtalk.id).secret == "SEC" + "a" * 64

    new = rotate_secret(endpoint)
    db.session.commit()
    raw, raw_previous = stored(endpoint.id)
    assert new not in raw and secret not in (raw_previous or "") and raw_previous.startswith(PREFIX)
    db.session.expire_all()
    again = db.session.get(WebhookEndpoint, endpoint.id)
    assert (again.secret, again.previous_secret) == (new, secret)


def test_keys_rotate_and_a_wrong_key_is_a_clear_error(app, ctx, monkeypatch):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [old_key])
    sealed_with_old = seal("whsec_old")
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [new_key, old_key])  # the new key seals, both open
    assert unseal(sealed_with_old) == "whsec_old"
    assert Fernet(new_key.encode()).decrypt(seal("whsec_new")[len(PREFIX):].encode()) == b"whsec_new"
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [new_key])
    with pytest.raises(SealedSecretUnreadable):
        unseal(sealed_with_old)
    assert unseal("whsec_stored_before_sealing") == "whsec_stored_before_sealing"  # read as it is


def test_without_secrets_keys_the_key_comes_from_the_secret_key(app, ctx):
    assert not app.config["SECRETS_KEYS"]
    token = seal("whsec_x")[len(PREFIX):]
    assert Fernet(derived_key(app.config["SECRET_KEY"]).encode()).decrypt(token.encode()) == b"whsec_x"


def test_the_migration_seals_what_was_stored_in_clear_and_the_downgrade_opens_it(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "SECRET_KEY": "migration-test",
                      "SCHEDULER_MODE": "off", "TESTING": True})
    with app.app_context():
        flask_migrate.upgrade(revision="4bb4de04d62b")  # the revision before sealing
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, slug, name_zh, name_en, type, created_at, updated_at) "
                              "VALUES (1, 'x', 'x', 'x', 'bureau', '2024-01-01', '2024-01-01')"))
            conn.execute(text(
                "INSERT INTO webhook_endpoints (id, org_id, url, description, secret, previous_secret, kinds, org_ids,"
                " types, enabled, consecutive_failures, created_at, updated_at, kind, alerts) VALUES (1, 1,"
                " 'https://p.example/h', '', 'whsec_clear', 'whsec_before', '[]', '[]', '[]', 1, 0, '2024-01-01',"
                " '2024-01-01', 'webhook', 0)"))
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            secret, previous = conn.execute(text("SELECT secret, previous_secret FROM webhook_endpoints")).one()
        assert secret.startswith(PREFIX) and previous.startswith(PREFIX) and "clear" not in secret
        with Session(db.engine) as session:  # this app's own (the suite's db.session is bound elsewhere)
            assert session.get(WebhookEndpoint, 1).secret == "whsec_clear"
        flask_migrate.downgrade(revision="4bb4de04d62b")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT secret, previous_secret FROM webhook_endpoints")).one() == ("whsec_clear", "whsec_before")
        db.engine.dispose()


def test_resealing_moves_every_secret_to_the_new_key(app, ctx, runner, monkeypatch):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [old_key])
    endpoint = create_endpoint(create_city()["xinhui"], "https://partner.example/hook")
    db.session.commit()
    secret = endpoint.secret
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [new_key, old_key])
    result = runner.invoke(args=["secrets", "reseal"])
    assert result.exit_code == 0 and "1 endpoints" in result.output
    monkeypatch.setitem(app.config, "SECRETS_KEYS", [new_key])  # the old key is gone
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).secret == secret
