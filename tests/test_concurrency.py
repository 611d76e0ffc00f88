"""Registrations racing for the last seats: nobody is overbooked, nobody gets an error.

On PostgreSQL against the suite's database; on SQLite (the embedded default) against a
database file of its own, with a thread per request as the embedded server runs them.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from scheduler.privacy.notice import NOTICE_VERSION
from sqlalchemy import delete, select
from sqlalchemy.orm import scoped_session, sessionmaker

from scheduler.api.errors import APIError
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.orgs.models import Organization
from scheduler.registrations import operations
from scheduler.registrations.models import Registration

@pytest.fixture
def committed(app, db_session):
    """Real commits on separate connections (each thread its own), cleaned up afterwards."""
    from flask_sqlalchemy.session import _app_ctx_id

    real = scoped_session(sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
    test_session, db.session = db.session, real
    created: dict[str, int] = {}
    try:
        yield created
    finally:
        with app.app_context():
            real.execute(delete(Registration).where(Registration.event_id == created.get("event", -1)))
            real.execute(delete(Event).where(Event.id == created.get("event", -1)))
            real.execute(delete(Organization).where(Organization.id == created.get("org", -1)))
            real.commit()
            real.remove()
        db.session = test_session


@pytest.mark.postgres
def test_last_seats_are_never_overbooked(app, committed):
    from tests.factories import create_event, create_org

    with app.test_request_context():
        org = create_org("race-org")
        event = create_event(org, publish=True, capacity=3)
        committed.update(org=org.id, event=event.id)
        db.session.remove()

    _race(app, committed["event"])


def _race(app, event_id: int) -> None:
    """16 threads register for an event with 3 seats."""

    def attempt(n: int) -> str:
        with app.app_context():
            try:
                target = db.session.get(Event, event_id)
                registration, _ = operations.register(target, name=f"p{n}", phone=f"1390013{n:04d}", channels=["sms"], consent_version=NOTICE_VERSION)
                db.session.commit()
                return registration.status
            except APIError as exc:
                db.session.rollback()
                return exc.code
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count("registered") == 3
    assert results.count("waitlisted") == 13
    with app.app_context():
        seated = db.session.scalars(select(Registration).where(Registration.event_id == event_id, Registration.status == "registered")).all()
        assert len(seated) == 3
        db.session.remove()


def test_embedded_sqlite_under_concurrent_registrations(db_session, tmp_path):
    """The embedded default: a SQLite file in WAL mode, requests on threads."""
    import flask_migrate
    from flask_sqlalchemy.session import _app_ctx_id

    from scheduler import create_app
    from tests.factories import create_event, create_org

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'embedded.db'}", "SCHEDULER_MODE": "off"})
    test_session = db.session
    try:
        with app.app_context():
            db.session = scoped_session(sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
            flask_migrate.upgrade()
        with app.test_request_context():
            event = create_event(create_org("sqlite-org"), publish=True, capacity=3)
            event_id = event.id
            db.session.remove()
        _race(app, event_id)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        db.session = test_session
