"""The privacy migration on data as it was: numbers hashed where only recognised, e-mail gone, and
personal calendar links derived from numbers dead."""
from __future__ import annotations

import flask_migrate
from sqlalchemy import text

from scheduler import create_app
from scheduler.extensions import db
from scheduler.util.phone import phone_key

BEFORE = "2f34990810c5"  # the revision before participants' privacy


def test_the_migration_hashes_numbers_drops_email_and_kills_phone_derived_links(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}", "SECRET_KEY": "migration-test",
                      "SCHEDULER_MODE": "off", "TESTING": True})
    with app.app_context():
        flask_migrate.upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, slug, name_zh, name_en, type, created_at, updated_at) "
                              "VALUES (1, 'x', 'x', 'x', 'bureau', '2024-01-01', '2024-01-01')"))
            conn.execute(text(
                "INSERT INTO events (id, uid, kind, title, description, org_id, venue, address, starts_at, ends_at,"
                " last_ends_at, span_seconds, all_day, timezone, status, details, sequence, created_at, updated_at, exdates)"
                " VALUES (1, 'u1', 'study_tour', 't', '', 1, '', '', '2024-06-22 01:00:00', '2024-06-22 04:00:00',"
                " '2024-06-22 04:00:00', 10800, 0, 'Asia/Shanghai', 'published', '{}', 0, '2024-06-01', '2024-06-01', '[]')"))
            conn.execute(text(
                "INSERT INTO registrations (id, event_id, name, phone, email, channels, status, token_hash, created_at)"
                " VALUES (1, 1, '张三', '+8613800138000', 'z@example.org', '[\"sms\", \"email\"]', 'registered', 'h1',"
                " '2024-06-15 02:00:00')"))
            conn.execute(text("INSERT INTO sms_choices (id, phone, opted_out, source, detail, created_at)"
                              " VALUES (1, '+8613800138000', 1, 'reply', 'TD', '2024-06-15 02:00:00')"))
            conn.execute(text("INSERT INTO personal_calendars (id, phone, version, token_hash, issued_at)"
                              " VALUES (1, '+8613800138000', 1, 'old', '2024-06-15 02:00:00')"))
        flask_migrate.upgrade()
        key = phone_key("+8613800138000")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT phone_hash, channels, consent_version, calendar_token_hash FROM registrations")).one() \
                == (key, '["sms"]', None, None)
            assert conn.execute(text("SELECT phone_hash, opted_out FROM sms_choices")).one() == (key, 1)
            assert conn.execute(text("SELECT count(*) FROM personal_calendars")).scalar() == 0
            columns = {row[1] for row in conn.execute(text("PRAGMA table_info(registrations)"))}
            assert "email" not in columns
            stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM sms_choices")) for v in row)
            assert "13800138000" not in stored
        flask_migrate.downgrade(revision=BEFORE)  # the number comes back where a registration still has it
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT phone, opted_out FROM sms_choices")).one() == ("+8613800138000", 1)
        db.engine.dispose()
