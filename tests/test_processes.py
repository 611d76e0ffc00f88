"""The scaled-out processes for real: ``flask scheduler run`` and ``flask worker run`` as
subprocesses on PostgreSQL, sending to a verifying receiver on 127.0.0.1.

Each test runs in a schema of its own (``procs``) of the test database, migrated by a
``flask db upgrade`` subprocess; the processes use the real clock, so the data is set up
with real times (reminders due a few seconds ahead, or already due). Every subprocess is
killed at the end of its test, whatever happened; every wait has a deadline.
"""
from __future__ import annotations

import base64
import collections
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.orm import scoped_session, sessionmaker

from scheduler import create_app
from scheduler.channels.models import WebhookEndpoint
from scheduler.events import operations as event_ops
from scheduler.extensions import db
from scheduler.reminders.dispatch import dispatch_due
from scheduler.reminders.models import Delivery, Reminder
from scheduler.util import time as clock_module
from tests.factories import create_org
from tests.receiver import Answer, Receiver, Rejected

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "procs"
UTC = dt.timezone.utc
ACTIVE = "active: holding the scheduler lock"
STANDBY = "standby:"
WORKER_UP = "worker started with"


# -- helpers ---------------------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy (returned) or ``timeout`` seconds pass (fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def real_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class SlowReceiver(Receiver):
    """The verifying receiver, with ``delay`` seconds spent on each request before it is
    checked and recorded, and a count of requests ``started`` (arrived, maybe not answered)."""

    def __init__(self, *args: Any, delay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.started = 0
        self._started_lock = threading.Lock()

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        with self._started_lock:
            self.started += 1
        if self.delay:
            time.sleep(self.delay)
        return super()._handle(path, headers, raw)


class Proc:
    """One ``flask ...`` subprocess with its stderr in a file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name, self.popen, self.log_path = name, popen, log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def says(self, needle: str) -> bool:
        return needle in self.log

    def kill(self) -> None:
        """``kill -9`` and reap."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)

    def __repr__(self) -> str:
        return f"<{self.name} pid={self.popen.pid} rc={self.popen.poll()}>"


class Processes:
    """Starts ``flask`` subprocesses on the schema; :meth:`kill_all` is the fixture's teardown."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url, self.tmp_path = url, tmp_path
        self.started: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)}
        env.update(
            FLASK_APP="scheduler", DATABASE_URL=self.url, OUTBOUND_ALLOWLIST="127.0.0.1/32", SCHEDULER_MODE="off",
            SECRET_KEY="test", BASE_URL="http://scheduler.test", PYTHONUNBUFFERED="1",
            LOG_LEVEL="INFO",  # the tests wait for the processes' INFO lines (active, standby, started)
        )
        env.update(extra)
        return env

    def start(self, name: str, *args: str, **env: str) -> Proc:
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env(**env),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log_path)
        self.started.append(proc)
        return proc

    def scheduler(self, name: str, **env: str) -> Proc:
        return self.start(name, "scheduler", "run", **env)

    def worker(self, name: str, concurrency: int = 4, **env: str) -> Proc:
        return self.start(name, "worker", "run", "--concurrency", str(concurrency), **env)

    def kill_all(self) -> None:
        for proc in self.started:
            try:
                proc.kill()
            except Exception:  # keep killing the others
                pass

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} {p!r}\n{p.log[-4000:]}" for p in self.started)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    """Schema ``procs`` of the test database, migrated by a ``flask db upgrade`` subprocess."""
    base = os.environ["TEST_DATABASE_URL"]
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={SCHEMA}"}).render_as_string(hide_password=False)
        env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
        env.update(FLASK_APP="scheduler", DATABASE_URL=url, SCHEDULER_MODE="off", SECRET_KEY="test")
        done = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        yield url
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def procs_app(schema_url: str) -> Iterator[Flask]:
    """An application on the schema, for setting up data and reading results in this process."""
    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": schema_url, "SECRET_KEY": "test", "SCHEDULER_MODE": "off",
        "BASE_URL": "http://scheduler.test", "SERVER_NAME": None, "RATELIMIT_STORAGE_URI": "memory://",
        "OUTBOUND_ALLOWLIST": ["127.0.0.1/32"],
    })
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def schema(procs_app: Flask, db_session: Any) -> Iterator[Flask]:
    """Empty tables, the real clock, and ``db.session`` committing for real to the schema."""
    with procs_app.app_context():
        with db.engine.begin() as conn:
            tables = conn.scalars(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"
            ), {"s": SCHEMA}).all()
            conn.execute(text(f"TRUNCATE {', '.join(f'{SCHEMA}.{t}' for t in tables)} RESTART IDENTITY CASCADE"))
        real = scoped_session(sessionmaker(bind=db.engine), scopefunc=_app_ctx_id)
    saved, db.session = db.session, real  # type: ignore[assignment]
    clock_module.set_clock(None)  # the processes use the real clock; so does the data set up here
    try:
        yield procs_app
    finally:
        with procs_app.app_context():
            real.remove()
        db.session = saved


@pytest.fixture
def processes(schema_url: str, tmp_path: Path) -> Iterator[Processes]:
    """The subprocesses of one test: every one is killed at its end (pytest shows their logs if it failed)."""
    started = Processes(schema_url, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
        sys.stderr.write(started.logs())


@pytest.fixture
def hook() -> Iterator[SlowReceiver]:
    """A fast (counting) verifying receiver on 127.0.0.1."""
    receiver = SlowReceiver(fast=True).start()
    try:
        yield receiver
    finally:
        receiver.stop()


# -- data ------------------------------------------------------------------------------------


def add_endpoints(app: Flask, receiver: Receiver, count: int, **filters: Any) -> list[int]:
    """``count`` enabled endpoints pointing at the receiver, each with its own secret (given to the receiver)."""
    with app.app_context():
        org = create_org()
        ids = []
        for n in range(count):
            secret = new_secret()
            receiver.secrets.append(secret)
            endpoint = WebhookEndpoint(org_id=org.id, url=receiver.url(f"/hook/{n}"), secret=secret, **filters)
            db.session.add(endpoint)
            db.session.flush()
            ids.append(endpoint.id)
        db.session.commit()
        return ids


def events_due_soon(app: Flask, due: list[dt.datetime], kinds: tuple[str, ...] = ("science_carnival",), *,
                    commit_each: bool = False) -> list[int]:
    """Published events (of ``kinds`` in turn) whose one reminder (``PT5M``) falls due at each moment of ``due``;
    ``commit_each``: one commit per event (as organizers publishing one after the other), else one in all."""
    ids = []
    with app.app_context():
        org = create_org()
        for n, when in enumerate(due):
            assert when > real_now(), "a reminder due already would not be planned"
            start = when + dt.timedelta(minutes=5)
            event = event_ops.create_event(org=org, kind=kinds[n % len(kinds)], title=f"活动 {n}", starts_at=start,
                                           ends_at=start + dt.timedelta(hours=2), reminders=["PT5M"])
            event_ops.publish_event(event)
            ids.append(event.id)
            if commit_each:
                db.session.commit()
        db.session.commit()
        planned = db.session.scalar(select(func.count()).select_from(Reminder).where(Reminder.event_id.in_(ids)))
        assert planned == len(due)
    return ids


def events_already_due(app: Flask, count: int, kinds: tuple[str, ...] = ("science_carnival",)) -> list[int]:
    """Published events each with one pending reminder already due (as if the scheduler had been down)."""
    ids = []
    with app.app_context():
        org = create_org()
        at = real_now()
        for n in range(count):
            start = at + dt.timedelta(hours=1)
            # Its own plan (PT1H before a start an hour away) is due already, so it plans nothing: add it by hand.
            event = event_ops.create_event(org=org, kind=kinds[n % len(kinds)], title=f"错过的活动 {n}", starts_at=start,
                                           ends_at=start + dt.timedelta(hours=2), reminders=["PT1H"])
            event_ops.publish_event(event)
            db.session.add(Reminder(event_id=event.id, occurrence_start=event.starts_at, offset="PT1H",
                                    scheduled_at=at - dt.timedelta(seconds=1), dispatch_at=at - dt.timedelta(seconds=1), status="pending"))
            ids.append(event.id)
        db.session.commit()
    return ids


def delivery_statuses(app: Flask) -> collections.Counter[str]:
    with app.app_context():
        try:
            return collections.Counter(dict(db.session.execute(  # type: ignore[arg-type]
                select(Delivery.status, func.count()).group_by(Delivery.status)).all()))
        finally:
            db.session.remove()


def delivery_ids(app: Flask, *statuses: str) -> set[str]:
    with app.app_context():
        try:
            stmt = select(Delivery.id)
            if statuses:
                stmt = stmt.where(Delivery.status.in_(statuses))
            return set(db.session.scalars(stmt))
        finally:
            db.session.remove()


def reminder_statuses(app: Flask) -> collections.Counter[str]:
    with app.app_context():
        try:
            return collections.Counter(dict(db.session.execute(  # type: ignore[arg-type]
                select(Reminder.status, func.count()).group_by(Reminder.status)).all()))
        finally:
            db.session.remove()


def all_sent(app: Flask, expected: int) -> bool:
    return delivery_statuses(app) == {"sent": expected}


def active_of(*schedulers: Proc) -> list[Proc]:
    return [p for p in schedulers if p.says(ACTIVE)]


def truncated(request: Rejected) -> bool:
    """A request cut short (its sender was killed between the headers and the body): no signature can verify it."""
    return len(request.raw) < int(request.headers.get("content-length") or 0)


def assert_none_rejected(receiver: Receiver, *, except_truncated: bool = False) -> None:
    rejected = [r for r in receiver.rejected if not (except_truncated and truncated(r))]
    assert not rejected, [(r.path, r.error[:200], len(r.raw), r.headers.get("content-length")) for r in rejected[:3]]


def assert_exactly_once(receiver: Receiver, ids: set[str]) -> None:
    assert_none_rejected(receiver)
    assert set(receiver.ids) == ids
    repeats = {k: v for k, v in receiver.ids.items() if v > 1}
    assert not repeats, f"{len(repeats)} webhook-ids received more than once"


# -- the tests -------------------------------------------------------------------------------


def test_two_schedulers_three_workers_deliver_each_message_once(schema, processes, hook):
    """Every (reminder or event message, endpoint) arrives exactly once, whichever process did the work."""
    app = schema
    every = add_endpoints(app, hook, 4)
    tech_only = add_endpoints(app, hook, 1, kinds=["tech_week"])
    kinds = ("science_carnival", "tech_week")
    missed = events_already_due(app, 6, kinds)  # dispatched as soon as a scheduler becomes active

    schedulers = [processes.scheduler(f"scheduler{n}") for n in range(2)]
    workers = [processes.worker(f"worker{n}", 4) for n in range(3)]
    wait_until(lambda: len(active_of(*schedulers)) == 1 and all(p.says(STANDBY) or p.says(ACTIVE) for p in schedulers),
               20, "one active scheduler and one standby")
    wait_until(lambda: all(p.says(WORKER_UP) for p in workers), 20, "the workers to start")

    # Published one by one while the processes run, each due within seconds: the active scheduler
    # learns of each by NOTIFY, mostly while it is still dispatching the ones before.
    t0 = real_now()
    live = events_due_soon(app, [t0 + dt.timedelta(seconds=3 + 0.01 * n) for n in range(24)], kinds, commit_each=True)

    events = len(missed) + len(live)
    per_kind = events // 2  # half of them are tech week events
    # Each event: event.published and reminder.due to every unfiltered endpoint, and to the tech-week one if it is one.
    expected = 2 * (events * len(every) + per_kind * len(tech_only))
    # Well before the 30-second safety poll: each reminder is dispatched when it falls due.
    wait_until(lambda: hook.count >= expected and all_sent(app, expected), 15,
               f"{expected} deliveries received and recorded sent")
    time.sleep(0.3)  # anything doubled would arrive now
    assert hook.count == expected
    assert_exactly_once(hook, delivery_ids(app))
    assert reminder_statuses(app) == {"dispatched": events}
    assert len(active_of(*schedulers)) == 1
    assert all(p.popen.poll() is None for p in processes.started), processes.logs()


def test_worker_killed_mid_fan_out_loses_nothing(schema, processes):
    """``kill -9`` of a worker in a 2,000-delivery fan-out: all arrive, and a repeat reuses its webhook-id."""
    app = schema
    with SlowReceiver(fast=True, delay=0.004) as receiver:
        add_endpoints(app, receiver, 20, types=["reminder.due"])
        events_already_due(app, 100)
        with app.app_context():
            assert dispatch_due(limit=200) == 100
            db.session.commit()
            db.session.remove()
        expected = delivery_ids(app)
        assert len(expected) == 2000

        lease = {"DELIVERY_LEASE_SECONDS": "2"}
        victim = processes.worker("victim", 4, **lease)
        survivor = processes.worker("survivor", 4, **lease)
        wait_until(lambda: receiver.count >= 400, 20, "the fan-out to be under way")
        assert receiver.count < 1600, "the fan-out went too fast for the kill to land mid-way"
        victim.kill()
        replacement = processes.worker("replacement", 4, **lease)

        wait_until(lambda: set(receiver.ids) >= expected, 30, "all 2,000 deliveries to arrive")
        wait_until(lambda: all_sent(app, 2000), 15, "every delivery recorded sent")
        assert_none_rejected(receiver, except_truncated=True)
        assert set(receiver.ids) == expected  # a repeat carries the same webhook-id: no id beyond these
        assert receiver.count - len(expected) == sum(n - 1 for n in receiver.ids.values())
        with app.app_context():
            retried = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.attempts > 1))
            db.session.remove()
        assert retried >= 1, "no claim of the killed worker was taken back"
        assert survivor.says("took back") or replacement.says("took back")
        assert survivor.popen.poll() is None and replacement.popen.poll() is None


def test_standby_scheduler_takes_over_from_a_killed_one(schema, processes, hook):
    """``kill -9`` of the active scheduler: the standby is active within 10 s and nothing due is lost."""
    app = schema
    add_endpoints(app, hook, 2, types=["reminder.due"])
    schedulers = [processes.scheduler(f"scheduler{n}") for n in range(2)]
    worker = processes.worker("worker", 4)
    wait_until(lambda: len(active_of(*schedulers)) == 1 and all(p.says(STANDBY) or p.says(ACTIVE) for p in schedulers),
               20, "one active scheduler and one standby")
    wait_until(lambda: worker.says(WORKER_UP), 20, "the worker to start")
    (active,) = active_of(*schedulers)
    (standby,) = [p for p in schedulers if p is not active]

    before = events_due_soon(app, [real_now() + dt.timedelta(seconds=1.5 + 0.1 * n) for n in range(5)])
    wait_until(lambda: hook.count >= 2 * len(before), 15, "the reminders due before the kill")

    after = events_due_soon(app, [real_now() + dt.timedelta(seconds=2 + 0.2 * n) for n in range(10)])
    killed_at = time.monotonic()
    active.kill()
    wait_until(lambda: standby.says(ACTIVE), 10, "the standby to take over")
    took_over = time.monotonic() - killed_at
    assert took_over < 10

    expected = 2 * (len(before) + len(after))
    wait_until(lambda: hook.count >= expected and all_sent(app, expected), 20, "the reminders due after the kill")
    time.sleep(0.3)
    assert hook.count == expected
    assert_exactly_once(hook, delivery_ids(app))
    assert reminder_statuses(app) == {"dispatched": len(before) + len(after)}


def test_sigterm_finishes_in_flight_sends_and_gives_back_the_rest(schema, processes):
    """SIGTERM with sends in flight: exit 0 soon, in-flight ones ``sent``, other claims back to waiting."""
    app = schema
    with SlowReceiver(fast=True, delay=0.8) as receiver:
        add_endpoints(app, receiver, 2, types=["reminder.due"])
        events_already_due(app, 20)
        with app.app_context():
            dispatch_due()
            db.session.commit()
            db.session.remove()
        expected = delivery_ids(app)
        assert len(expected) == 40

        worker = processes.worker("worker", 4)
        # high water 16: four sends in flight, twelve claimed and queued behind them
        wait_until(lambda: receiver.started >= 6 and receiver.started > receiver.count, 20, "sends in flight")
        worker.popen.send_signal(signal.SIGTERM)
        in_flight_at_term = receiver.started
        try:
            code = worker.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker did not stop within 10 s of SIGTERM")
        assert code == 0, worker.log

        # Every send that had started finished and was recorded; nothing is left in `sending`.
        assert receiver.count == receiver.started >= in_flight_at_term
        statuses = delivery_statuses(app)
        assert "sending" not in statuses, statuses
        assert delivery_ids(app, "sent") == set(receiver.ids)
        assert statuses["sent"] == receiver.count
        given_back = delivery_ids(app, "pending", "retrying")
        assert len(given_back) == 40 - receiver.count > 0
        match = re.search(r"(\d+) in-flight sends recorded, (\d+) claims given back", worker.log)
        assert match, worker.log
        assert int(match.group(1)) > 0 and 0 < int(match.group(2)) <= len(given_back), worker.log
        with app.app_context():
            attempts = set(db.session.scalars(select(Delivery.attempts).where(Delivery.id.in_(given_back))))
            db.session.remove()
        assert attempts == {0}, "a claim given back unsent must not count as an attempt"

        # Another worker finishes them.
        receiver.delay = 0.0
        processes.worker("next", 4)
        wait_until(lambda: set(receiver.ids) == expected and all_sent(app, 40), 20, "the rest to be sent")
        time.sleep(0.2)
        assert_exactly_once(receiver, expected)
