"""The migrations build the schema from empty, and the models never drift from them."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from scheduler.extensions import db


def test_models_and_migrations_agree(app):
    """Autogenerate against the migrated database finds nothing to do."""
    with app.app_context():
        connection = db.session.connection()  # the test's own connection (SQLite allows one writer)
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        assert compare_metadata(context, db.metadata) == []


def test_schema_has_every_table(app):
    with app.app_context():
        tables = set(inspect(db.session.connection()).get_table_names())
    assert {"organizations", "users", "memberships", "api_tokens", "events", "event_outcomes", "registrations", "targets", "alembic_version"} <= tables


def test_foreign_keys_are_enforced_after_migrating(app, db_session):
    """On SQLite the migrations turn foreign keys off to rebuild tables; the connection they used
    goes back to the pool, so they must turn them on again (deletes cascade, bad references fail)."""
    if db.engine.dialect.name != "sqlite":
        return
    assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1
