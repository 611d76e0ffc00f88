"""Fixtures: one migrated database per run, each test in a transaction rolled back at its end.

``TEST_DATABASE_URL`` points the suite at PostgreSQL; without it the suite runs on a
SQLite file and says so in the header of the run.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from scheduler import create_app
from scheduler.extensions import db, limiter
from scheduler.util import time as clock_module
from tests.receiver import Receiver, receiving

#: The suite's "now" unless a test moves the clock: a Saturday in 2024's tech-week season.
NOW = dt.datetime(2024, 6, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return f"database: PostgreSQL ({url.split('@')[-1]})"
    return "database: SQLite (TEST_DATABASE_URL not set: PostgreSQL-only tests are skipped)"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the pages' catalogs when a ``.po`` is newer than its ``.mo`` (``make install`` does it
    too), so running pytest straight after editing a translation tests the edited one."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from scheduler.i18n import TRANSLATIONS

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source, mo.open("wb") as target:
                write_mo(target, read_po(source))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip PostgreSQL-only tests, with the reason shown in the summary, when running on SQLite."""
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application on a database built from empty by the migrations."""
    url = _database_url(tmp_path_factory)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test-secret",
            "SCHEDULER_MODE": "off",
            "BASE_URL": "http://scheduler.test",
            "SERVER_NAME": None,
            "RATELIMIT_STORAGE_URI": "memory://",
            "FEED_VERSION_TTL": 0,  # tests change data and read feeds at once
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # scrypt costs 0.1 s a user; tests make hundreds
            # most tests register without a texted code; tests/test_verification.py turns it on
            "REGISTRATION_VERIFY_PHONE": "off",
        }
    )
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        flask_migrate.upgrade()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def db_session(app: Flask) -> Iterator[scoped_session[Session]]:
    """Run the test inside one outer transaction that is rolled back afterwards.

    Commits made by the code under test only release savepoints.
    """
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=True),
            scopefunc=_app_ctx_id,
        )
        db.session = session  # type: ignore[assignment]
        try:
            yield session
        finally:
            session.remove()
            db.session = original
            outer.rollback()
            connection.close()


@pytest.fixture(autouse=True)
def _fresh_limits(app: Flask) -> None:
    limiter.reset()


@pytest.fixture(autouse=True)
def _fresh_feed_caches(app: Flask) -> None:
    """Each test's rolled-back data reuses the same feed versions: start with empty caches."""
    app.extensions.pop("feed_caches", None)


class Clock:
    """The injected clock: tests set and move time instead of sleeping."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, at: dt.datetime) -> None:
        """Jump to ``at``."""
        self.at = at

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``."""
        self.at += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def clock() -> Iterator[Clock]:
    """Every test starts at :data:`NOW`."""
    fake = Clock(NOW)
    clock_module.set_clock(fake)
    yield fake
    clock_module.set_clock(None)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the application."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner of the application's ``flask`` commands."""
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An application context for tests that call operations directly."""
    with app.test_request_context():
        yield


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real, verifying webhook receiver on 127.0.0.1 (see ``tests/receiver.py``); add secrets to ``receiver.secrets``."""
    yield from receiving()
