"""Benchmark of reminder delivery: webhook fan-out, lateness, and the sender's memory.

On SQLite (a temporary file, the embedded sender pool in this process) and on PostgreSQL
(a dedicated ``bench_reminders`` database, ``flask worker run`` subprocesses) the schema
is built by the project's Alembic migrations, and a fast webhook receiver (asyncio,
HTTP/1.1 keep-alive, in a process of its own on 127.0.0.1, checking Standard Webhooks
signatures) takes the messages. Then

1. **fan-out**: 100 published events whose ``PT10M`` reminders fell due, × 100 webhook
   endpoints: :func:`scheduler.reminders.dispatch.dispatch_due` queues 10,000
   ``reminder.due`` deliveries, and the senders send them; timed from the dispatch's
   start to the last row persisted ``sent``. Baseline, in the same run: a bare
   ``requests`` thread pool (one keep-alive ``Session`` per thread, as many threads and
   processes as the senders) POSTing the same bodies with the same Standard Webhooks
   headers, signed with ``standardwebhooks``, persisting nothing (goal: ours at least 0.7
   of the baseline's deliveries per second);
2. **lateness**: 1,000 reminders falling due in the same second, with the real scheduler
   on the real clock (``flask scheduler run`` + worker on PostgreSQL, the embedded engine
   on SQLite): p50/p99 from ``scheduled_at`` to arrival at the receiver (goal: p99 <= 1 s);
3. **memory**: the senders' peak resident memory (VmHWM) during the fan-out, against the
   same process idle just before it;
4. **SMS fan-out**: 10 events × 1,000 seated registrants = 10,000 personalised texts through
   the ``http`` provider (``SMS_HTTP_BODY`` with ``{messages}``, batches of 100) to a fake
   gateway (the receiver's ``/sms``), with the embedded pool on an application clock set to
   10:00 Asia/Shanghai (quiet hours), on SQLite and PostgreSQL; baseline: a bare ``requests``
   pool POSTing the same bodies of 100; texts and requests per second (``--sms-only``).

It prints the tables and writes the figures to ``bench/results/reminders-<timestamp>.json``.
Run ``python -m bench.reminders --help``.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.api import RESULTS_DIR, UTC, add_backend_args, build_schema, make_app, postgresql, print_closing

DESCRIPTION = ("Benchmark of reminder delivery: 10,000 webhook fan-out vs a bare requests pool, lateness of 1,000"
               " reminders due in the same second, the senders' peak memory, and a 10,000-text SMS fan-out through"
               " the http provider (batched) vs a bare requests pool.")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_reminders"
ROOT = Path(__file__).resolve().parent.parent
#: The test suite's databases: never dropped by a benchmark.
PROTECTED_DATABASES = ("test", "test_main", "postgres")
FANOUT_GOAL = 0.7
LATENESS_GOAL_S = 1.0
OFFSET = "PT10M"
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --------------------------------------------------------------------------- the receiver


def endpoint_secret(n: int) -> str:
    """The signing secret of endpoint ``n`` (deterministic, so the receiver knows it without being told)."""
    return "whsec_" + base64.b64encode(hashlib.sha256(f"bench-reminders-{n}".encode()).digest()[:24]).decode()


class _ReceiverState:
    """What the receiver process keeps: arrivals (webhook-id, wall clock), counts, rejections."""

    def __init__(self, verify_every: int) -> None:
        from standardwebhooks import Webhook

        self.verify_every = verify_every
        self._webhook = Webhook
        self._hooks: dict[int, Any] = {}
        self.reset()

    def reset(self) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.verified = 0
        self.rejected: list[str] = []
        self.sms_requests = 0
        self.sms_ids: list[str] = []
        self.sms_rejected: list[str] = []

    def sms(self, body: bytes) -> bool:
        """The fake SMS gateway: ``{"messages": [{"id", "phone", "text"}, ...]}``, each text starting with 【."""
        self.sms_requests += 1
        try:
            listed = json.loads(body)["messages"]
            bad = [m for m in listed if not (m["id"] and m["phone"].startswith("+86") and m["text"].startswith("【"))]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.sms_rejected.append(f"{type(exc).__name__}: {exc}")
            return False
        if bad or not listed:
            self.sms_rejected.append(f"{len(bad)} bad message(s), e.g. {str(bad[:1])[:200]}")
            return False
        self.sms_ids += [m["id"] for m in listed]
        return True

    def hook(self, path: str, headers: dict[str, str], body: bytes) -> int:
        wall = time.time()
        n = int(path.rsplit("/", 1)[-1])
        if len(self.arrivals) % self.verify_every == 0:
            webhook = self._hooks.get(n)
            if webhook is None:
                webhook = self._hooks[n] = self._webhook(endpoint_secret(n))
            try:
                webhook.verify(body, headers, json_parse=False)
                self.verified += 1
            except Exception as exc:  # noqa: BLE001 - any failure is a rejection, counted
                self.rejected.append(f"{path}: {type(exc).__name__}: {exc}")
                return 401
        self.arrivals.append((headers.get("webhook-id", ""), wall))
        return 204

    def stats(self, arrivals: bool) -> bytes:
        ids = [a[0] for a in self.arrivals]
        document: dict[str, Any] = {"count": len(ids), "unique": len(set(ids)), "verified": self.verified,
                                    "rejected": len(self.rejected), "rejections": self.rejected[:5]}
        document["sms"] = {"requests": self.sms_requests, "messages": len(self.sms_ids), "unique": len(set(self.sms_ids)),
                           "rejected": len(self.sms_rejected), "rejections": self.sms_rejected[:5]}
        if arrivals:
            document["arrivals"] = self.arrivals
        return json.dumps(document).encode()


class _ReceiverProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 server connection: keep-alive, Content-Length bodies, 204 to every webhook."""

    def __init__(self, state: _ReceiverState) -> None:
        self.state = state
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path = lines[0].split(" ")[:2]
            if method == "POST" and path.startswith("/hook/"):
                status = self.state.hook(path, headers, body)
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n" if status == 204 else
                                     b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                continue
            if method == "POST" and path == "/sms":
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"code\":0}"
                    if self.state.sms(body) else
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"code\":400}")
                continue
            if path.startswith("/_stats"):
                out = self.state.stats("arrivals" in path)
            elif path == "/_reset":
                self.state.reset()
                out = b"{}"
            else:
                out = b'{"error": "not found"}'
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(out)).encode() + b"\r\n\r\n" + out)


def _receiver_main(port: int, verify_every: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    state = _ReceiverState(verify_every)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(lambda: _ReceiverProtocol(state), "127.0.0.1", port,
                                                                backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """The receiver process; ``stats()`` and ``reset()`` go over HTTP to it."""

    def __init__(self, verify_every: int) -> None:
        self.port = free_port()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_receiver_main, args=(self.port, verify_every), name="bench-receiver", daemon=True)

    def url(self, n: int) -> str:
        """Endpoint ``n``'s URL."""
        return f"http://127.0.0.1:{self.port}/hook/{n}"

    @property
    def sms_url(self) -> str:
        """The fake SMS gateway's URL."""
        return f"http://127.0.0.1:{self.port}/sms"

    def start(self, timeout: float = 30) -> None:
        """Start it and wait (bounded) until it answers."""
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def _get(self, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stats(self, arrivals: bool = False) -> dict[str, Any]:
        """Counts (and, with ``arrivals``, every accepted message's webhook-id and wall-clock arrival)."""
        return self._get("/_stats?arrivals" if arrivals else "/_stats")

    def reset(self) -> None:
        """Forget everything received."""
        self._get("/_reset")

    def stop(self) -> None:
        """Stop the process."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


# --------------------------------------------------------------------------- data


def make_bench_app(url: str) -> Flask:
    """The application on ``url``, scheduler off, outgoing requests allowed to 127.0.0.1."""
    app = make_app(url)
    app.config["OUTBOUND_ALLOWLIST"] = ["127.0.0.1/32"]
    return app


def load_data(receiver: Receiver | None, endpoints: int, events: int, scheduled_at: dt.datetime | None) -> dict[str, Any]:
    """One organization, ``endpoints`` webhook endpoints (``reminder.due`` only) and ``events``
    published science carnivals, each with one ``PT10M`` reminder.

    ``scheduled_at=None``: the reminders fell due a minute ago (planned two minutes ago, on a
    clock set back); else they all fall due at ``scheduled_at``.
    """
    from scheduler.channels.models import WebhookEndpoint
    from scheduler.events.operations import create_event, publish_event
    from scheduler.extensions import db
    from scheduler.orgs.models import OrgType
    from scheduler.orgs.operations import upsert_org
    from scheduler.util.time import frozen, now

    org = upsert_org("bench-bureau", "江门市科学技术局", "Jiangmen Science and Technology Bureau", OrgType.BUREAU)
    db.session.flush()
    for n in range(endpoints if receiver is not None else 0):
        db.session.add(WebhookEndpoint(org_id=org.id, url=receiver.url(n), secret=endpoint_secret(n),
                                       description=f"partner {n}", types=["reminder.due"]))
    db.session.commit()
    real = now()
    due = scheduled_at or real - dt.timedelta(minutes=1)
    starts_at = due + dt.timedelta(minutes=10)
    clock = contextlib.nullcontext() if scheduled_at else frozen(real - dt.timedelta(minutes=2))
    started = time.perf_counter()
    with clock:
        for i in range(events):
            event = create_event(org=org, kind="science_carnival", title=f"江门科普嘉年华 第{i + 1}场", starts_at=starts_at,
                                 ends_at=starts_at + dt.timedelta(hours=4), reminders=[OFFSET],
                                 details={"theme": "走近科学", "expected_attendance": 1000 + i})
            publish_event(event)
        db.session.commit()
    from scheduler.reminders.models import Reminder
    planned = db.session.scalar(select(func.count()).select_from(Reminder).where(Reminder.scheduled_at == due))
    db.session.remove()
    if planned != events:
        raise RuntimeError(f"expected {events} reminders due at {due}, found {planned}")
    return {"scheduled_at": due, "load_seconds": time.perf_counter() - started}


def messages_of(url: str) -> list[tuple[str, str, str, str]]:
    """Every webhook delivery as the baseline sends it: (URL, webhook-id, body, secret)."""
    from scheduler.channels.models import WebhookEndpoint
    from scheduler.extensions import db
    from scheduler.reminders import messages
    from scheduler.reminders.models import Delivery, OutboxMessage

    app = make_bench_app(url)
    with app.app_context():
        rows = db.session.execute(
            select(Delivery.id, Delivery.type, OutboxMessage.payload, WebhookEndpoint.url, WebhookEndpoint.secret)
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .join(OutboxMessage, OutboxMessage.id == Delivery.message_id).order_by(Delivery.id)
        ).all()
        out = [(r.url, r.id, messages.body(r.type, r.payload), r.secret) for r in rows]
        db.session.remove()
        db.engine.dispose()
    return out


# --------------------------------------------------------------------------- watching the database


class StatusWatch:
    """Counts deliveries by status on a plain DB-API connection (no SQLAlchemy: on SQLite a
    reader outside the application's ``BEGIN IMMEDIATE`` takes no write lock)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            self.conn: Any = sqlite3.connect(parsed.database, isolation_level=None, check_same_thread=False)
        else:
            import psycopg

            self.conn = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False),
                                        autocommit=True)

    def counts(self) -> dict[str, int]:
        """Deliveries per status."""
        cursor = self.conn.cursor()
        cursor.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
        return dict(cursor.fetchall())

    def wait_all_final(self, total: int, timeout: float, interval: float = 0.02) -> tuple[float, dict[str, int]]:
        """Poll until ``total`` deliveries exist and none waits or is being sent; return (monotonic time seen, counts)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            seen = time.monotonic()
            busy = sum(counts.get(s, 0) for s in ("pending", "sending", "retrying"))
            if sum(counts.values()) >= total and not busy:
                return seen, counts
            if seen > deadline:
                raise TimeoutError(f"deliveries not all final after {timeout:.0f} s: {counts}")
            time.sleep(interval)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (user, system, interrupts) since boot, in seconds."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system · irq softirq steal (not idle, iowait)
    return busy / os.sysconf("SC_CLK_TCK")


def memory_of(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def reset_peak(pid: int | str = "self") -> bool:
    """Reset a process's VmHWM to its current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- senders under test


class Process:
    """A ``flask ...`` subprocess of the project (its output to a log file), always stopped by :meth:`stop`."""

    def __init__(self, args: Sequence[str], url: str, log_path: Path, ready: str) -> None:
        self.log_path, self.ready = log_path, ready
        env = {**os.environ, "FLASK_APP": "scheduler", "DATABASE_URL": url, "OUTBOUND_ALLOWLIST": "127.0.0.1/32",
               "SCHEDULER_MODE": "off", "RATELIMIT_STORAGE_URI": "memory://"}
        self._log = log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait (bounded) until the log says ``ready``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log_path.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ready in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.log_path.name} not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of its output."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Logged errors and warnings (tracebacks' first lines)."""
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if " ERROR " in line or " WARNING " in line or line.startswith("Traceback")]

    def stop(self) -> None:
        """SIGTERM (in-flight sends finish), SIGKILL to its group after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


def shut_down(app: Flask, processes: Sequence[Process]) -> list[str]:
    """Stop the processes and release this process's connections; returns the processes' error lines."""
    from scheduler.extensions import db

    errors = []
    for process in processes:
        process.stop()
        errors += process.errors()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return errors


def start_workers(url: str, count: int, concurrency: int, log_dir: Path) -> list[Process]:
    """``count`` × ``flask worker run --concurrency N``, waited for."""
    workers = [Process(["worker", "run", "--concurrency", str(concurrency)], url, log_dir / f"worker-{i}.log",
                       "worker started") for i in range(count)]
    try:
        for worker in workers:
            worker.wait_ready()
    except Exception:
        for worker in workers:
            worker.stop()
        raise
    return workers


# --------------------------------------------------------------------------- the baseline


def _baseline_process(messages: list[tuple[str, str, str, str]], concurrency: int, barrier: Any, out: Any) -> None:
    import requests
    from standardwebhooks import Webhook

    from scheduler.util.http import USER_AGENT

    pending = iter(messages)
    errors: list[str] = []

    def run() -> None:
        session = requests.Session()
        for url, msg_id, body, secret in pending:  # a shared iterator: each message once
            at = dt.datetime.now(UTC)
            headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
                       "webhook-signature": Webhook(secret).sign(msg_id, at, body),
                       "Content-Type": "application/json", "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
            try:
                response = session.post(url, data=body.encode(), headers=headers, timeout=10, allow_redirects=False)
                response.content  # noqa: B018 - read the answer, as the sender does
                if not 200 <= response.status_code < 300:
                    errors.append(f"status {response.status_code}")
            except requests.RequestException as exc:
                errors.append(type(exc).__name__)
        session.close()

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    barrier.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((time.monotonic(), len(messages), errors[:5], len(errors)))


def run_baseline(messages: list[tuple[str, str, str, str]], processes: int, concurrency: int) -> dict[str, Any]:
    """Send ``messages`` with a bare requests pool: ``processes`` × ``concurrency`` threads; time from the common start."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes + 1), ctx.Queue()
    children = [ctx.Process(target=_baseline_process, args=(messages[i::processes], concurrency, barrier, out), daemon=True)
                for i in range(processes)]
    for child in children:
        child.start()
    barrier.wait(timeout=120)
    started, cpu_started = time.monotonic(), machine_cpu_seconds()
    reports = [out.get(timeout=600) for _ in children]
    cpu_seconds = machine_cpu_seconds() - cpu_started
    for child in children:
        child.join(30)
    seconds = max(r[0] for r in reports) - started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "sent": sum(r[1] for r in reports), "errors": sum(r[3] for r in reports),
            "error_samples": [e for r in reports for e in r[2]][:5]}


# --------------------------------------------------------------------------- part 1: fan-out


@dataclass
class FanoutResult:
    """One configuration's fan-out against its baseline."""

    config: str
    backend: str
    processes: int
    concurrency: int
    deliveries: int
    load_seconds: float
    dispatch_seconds: float
    total_seconds: float
    send_seconds: float
    baseline_seconds: float
    statuses: dict[str, int]
    received: dict[str, Any]
    baseline_received: dict[str, Any]
    baseline_errors: int
    memory_kib: list[dict[str, int]]
    #: Busy CPU time of the whole machine during ours and during the baseline (all processes: senders,
    #: database, receiver): on a small machine it tells whether a configuration is bound by CPU.
    cpu_seconds: float = 0.0
    baseline_cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.deliveries / self.total_seconds

    @property
    def baseline_rate(self) -> float:
        return self.deliveries / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate

    @property
    def ok(self) -> bool:
        return (self.statuses.get("sent") == self.deliveries and self.received["unique"] == self.deliveries
                and not self.received["rejected"] and self.baseline_received["unique"] == self.deliveries
                and not self.baseline_errors)


def dispatch_now() -> tuple[int, float]:
    """Dispatch every due reminder in one transaction, as the scheduler's job does; (deliveries queued, seconds)."""
    from scheduler.extensions import db
    from scheduler.reminders.dispatch import dispatch_due
    from scheduler.reminders.models import Delivery

    started = time.monotonic()
    while dispatch_due(limit=200) == 200:
        db.session.commit()
    db.session.commit()
    seconds = time.monotonic() - started
    return db.session.scalar(select(func.count()).select_from(Delivery)), seconds


def run_fanout(backend: str, url: str, workers: int, receiver: Receiver, args: argparse.Namespace,
               log_dir: Path) -> FanoutResult:
    """Load, start the senders, dispatch, wait for every row ``sent``; then the baseline on the same messages."""
    from scheduler.extensions import db
    from scheduler.reminders import wakeup
    from scheduler.reminders.workers import SenderPool

    config = f"{backend}, embedded pool" if workers == 0 else f"{backend}, {workers} worker{'s' if workers > 1 else ''}"
    print(f"{config}: fan-out of {args.events} reminders × {args.endpoints} endpoints ...", flush=True)
    total = args.events * args.endpoints
    app = make_bench_app(url)
    with app.app_context():
        build_schema()
        loaded = load_data(receiver, args.endpoints, args.events, None)
    pool = None
    processes: list[Process] = []
    watch = StatusWatch(url)
    errors: list[str] = []
    try:
        if workers == 0:
            pool = SenderPool(app, args.concurrency, name="sender")
            pool.start()
            wakeup.on_deliveries(pool.wake)
            time.sleep(1)
            idle = [memory_of() | {"reset": reset_peak()}]
        else:
            processes = start_workers(url, workers, args.concurrency, log_dir)
            time.sleep(1)
            idle = [memory_of(p.pid) for p in processes]
        receiver.reset()
        with app.app_context():
            started, cpu_started = time.monotonic(), machine_cpu_seconds()
            queued, dispatch_seconds = dispatch_now()
            db.session.remove()
        if queued != total:
            raise RuntimeError(f"dispatch queued {queued} deliveries, expected {total}")
        finished, statuses = watch.wait_all_final(total, args.timeout)
        cpu_seconds = machine_cpu_seconds() - cpu_started
        peak = [memory_of()] if workers == 0 else [memory_of(p.pid) for p in processes]
        received = receiver.stats()
    finally:
        watch.close()
        if pool is not None:
            pool.stop()
            wakeup.clear_callbacks()
        errors += shut_down(app, processes)
    memory = [{"idle_rss": i["VmRSS"], "idle_peak": i["VmHWM"], "peak": p["VmHWM"], "end_rss": p["VmRSS"]}
              for i, p in zip(idle, peak, strict=True)]
    messages = messages_of(url)
    receiver.reset()
    baseline = run_baseline(messages, max(workers, 1), args.concurrency)
    baseline_cpu = baseline["cpu_seconds"]
    baseline_received = receiver.stats()
    result = FanoutResult(config, backend, max(workers, 1), args.concurrency, total, loaded["load_seconds"],
                          dispatch_seconds, finished - started, finished - started - dispatch_seconds, baseline["seconds"],
                          statuses, received, baseline_received, baseline["errors"], memory, cpu_seconds, baseline_cpu,
                          errors[:10])
    print(f"  ours {result.rate:,.0f}/s (dispatch {dispatch_seconds:.2f} s, all sent after {result.total_seconds:.2f} s),"
          f" baseline {result.baseline_rate:,.0f}/s: ratio {result.ratio:.2f}{'' if result.ok else '  (CHECKS FAILED)'}",
          flush=True)
    return result


# --------------------------------------------------------------------------- part 2: lateness


@dataclass
class LatenessResult:
    """1,000 reminders due in one second, through the real scheduler: arrival minus ``scheduled_at``."""

    config: str
    backend: str
    reminders: int
    endpoints: int
    lead_seconds: float
    received: int
    unique: int
    rejected: int
    statuses: dict[str, int]
    p50_s: float
    p99_s: float
    max_s: float
    min_s: float
    errors: list[str] = field(default_factory=list)


def run_lateness(backend: str, url: str, workers: int, receiver: Receiver, args: argparse.Namespace,
                 log_dir: Path) -> LatenessResult:
    """Start the clock and the senders, plan the reminders for one second ahead, measure their arrival."""
    from scheduler.reminders import engine

    config = f"{backend}, embedded engine" if workers == 0 else f"{backend}, scheduler + {workers} worker{'s' if workers > 1 else ''}"
    print(f"{config}: lateness of {args.lateness_reminders} reminders due in the same second ...", flush=True)
    app = make_bench_app(url)
    with app.app_context():
        build_schema()
    processes: list[Process] = []
    watch = StatusWatch(url)
    errors: list[str] = []
    total = args.lateness_reminders * args.lateness_endpoints
    try:
        if workers == 0:
            engine.start(app, senders=args.concurrency)
        else:
            scheduler = Process(["scheduler", "run"], url, log_dir / "scheduler.log", "active: holding the scheduler lock")
            processes.append(scheduler)
            scheduler.wait_ready()
            processes += start_workers(url, workers, args.concurrency, log_dir)
        time.sleep(1)
        receiver.reset()
        due = dt.datetime.fromtimestamp(math.ceil(time.time() + args.lead), UTC)
        with app.app_context():
            load_data(receiver, args.lateness_endpoints, args.lateness_reminders, due)
        lead = (due - dt.datetime.now(UTC)).total_seconds()
        if lead < 0:
            raise RuntimeError(f"loading took longer than --lead ({args.lead} s): raise it")
        watch.wait_all_final(total, args.timeout + lead)
        statuses = watch.counts()
        stats = receiver.stats(arrivals=True)
    finally:
        watch.close()
        if workers == 0:
            engine.stop()
        errors += shut_down(app, processes)
    late = sorted(wall - due.timestamp() for _id, wall in stats["arrivals"])
    cuts = statistics.quantiles(late, n=100, method="inclusive")
    result = LatenessResult(config, backend, args.lateness_reminders, args.lateness_endpoints, lead, stats["count"],
                            stats["unique"], stats["rejected"], statuses, cuts[49], cuts[98], late[-1], late[0], errors[:10])
    print(f"  p50 {result.p50_s:.3f} s, p99 {result.p99_s:.3f} s, max {result.max_s:.3f} s"
          f" ({result.unique:,} received; planned {lead:.1f} s ahead)", flush=True)
    return result


# --------------------------------------------------------------------------- part 4: SMS fan-out

#: ``SMS_HTTP_BODY`` of the benchmark: a text per number (``{messages}``), so personalised texts batch.
SMS_BODY = '{"messages": {messages}}'
SMS_SIGN = "江门科技"


@dataclass
class SmsResult:
    """An SMS fan-out through the ``http`` provider (texts batched) against a bare requests pool."""

    config: str
    backend: str
    concurrency: int
    messages: int
    batch_size: int
    #: The application clock's moment (Asia/Shanghai) when the dispatch started: daytime, outside quiet hours.
    app_clock: str
    load_seconds: float
    dispatch_seconds: float
    total_seconds: float
    send_seconds: float
    baseline_seconds: float
    statuses: dict[str, int]
    received: dict[str, Any]
    baseline_received: dict[str, Any]
    baseline_requests: int
    baseline_errors: int
    cpu_seconds: float = 0.0
    baseline_cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Our messages per second, from the dispatch's start to the last row ``sent``."""
        return self.messages / self.total_seconds

    @property
    def request_rate(self) -> float:
        """Our requests to the gateway per second."""
        return self.received["requests"] / self.total_seconds

    @property
    def baseline_rate(self) -> float:
        return self.messages / self.baseline_seconds

    @property
    def baseline_request_rate(self) -> float:
        return self.baseline_requests / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate

    @property
    def ok(self) -> bool:
        return (self.statuses.get("sent") == self.messages and self.received["messages"] == self.messages
                and self.received["unique"] == self.messages and not self.received["rejected"]
                and self.baseline_received["messages"] == self.messages
                and self.baseline_received["unique"] == self.messages and not self.baseline_received["rejected"]
                and not self.baseline_errors)


def daytime_clock() -> Any:
    """A clock running at the real pace but set to 10:00 Asia/Shanghai today when made (quiet hours: 21:00-08:00)."""
    real = dt.datetime.now(UTC)
    local = real.astimezone(SHANGHAI)
    shift = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC) - real
    return lambda: dt.datetime.now(UTC) + shift


def load_registrants(events: int, per_event: int) -> dict[str, Any]:
    """``events`` published carnivals (capacity None) whose ``PT10M`` reminder fell due a minute ago, each with
    ``per_event`` seated registrants wanting texts (distinct valid mainland numbers +86 1380000xxxx...)."""
    from sqlalchemy import insert

    from scheduler.events.models import Event
    from scheduler.extensions import db
    from scheduler.registrations.models import Registration
    from scheduler.util.phone import phone_key
    from scheduler.util.time import now

    started = time.perf_counter()
    loaded = load_data(None, 0, events, None)
    event_ids = db.session.scalars(select(Event.id).order_by(Event.id)).all()
    at = now()
    rows, n = [], 0
    for event_id in event_ids:
        for _ in range(per_event):
            rows.append({"event_id": event_id, "name": f"参与者{n}", "phone": f"+86138{n:08d}", "phone_hash": phone_key(f"+86138{n:08d}"),
                         "channels": ["sms"], "status": "registered", "created_at": at, "seated_at": at,
                         "token_hash": hashlib.sha256(f"bench-sms-{n}".encode()).hexdigest()})
            n += 1
    for start in range(0, len(rows), 2000):
        db.session.execute(insert(Registration.__table__), rows[start:start + 2000])
    db.session.commit()
    db.session.remove()
    return {"scheduled_at": loaded["scheduled_at"], "load_seconds": time.perf_counter() - started}


def sms_bodies(url: str, batch: int) -> list[bytes]:
    """Every text as our provider sends it, in bodies of ``batch`` messages: what the baseline POSTs."""
    from scheduler.channels.base import Outgoing
    from scheduler.channels.sms.channel import SmsTarget, provider, render_text
    from scheduler.channels.sms.links import manage_url
    from scheduler.extensions import db
    from scheduler.registrations.models import Registration
    from scheduler.reminders.models import Delivery, OutboxMessage

    app = make_sms_app(url, "http://127.0.0.1:9/sms", batch)
    with app.app_context():
        chosen = provider()
        rows = db.session.execute(
            select(Delivery.id, Delivery.type, Delivery.registration_id, Registration.phone, OutboxMessage.payload)
            .join(Registration, Registration.id == Delivery.registration_id)
            .join(OutboxMessage, OutboxMessage.id == Delivery.message_id).where(Delivery.channel == "sms")
            .order_by(Delivery.id)
        ).all()
        listed = []
        for r in rows:
            target = SmsTarget(r.registration_id, r.phone, manage_url(r.registration_id), chosen, SMS_SIGN)
            text = render_text(Outgoing(r.id, "sms", r.type, r.payload, 1, target), target).text
            listed.append({"id": r.id, "phone": r.phone, "text": text})
        db.session.remove()
        db.engine.dispose()
    return [('{"messages": ' + json.dumps(listed[i:i + batch], ensure_ascii=False, separators=(",", ":")) + "}").encode()
            for i in range(0, len(listed), batch)]


def make_sms_app(url: str, gateway: str, batch: int) -> Flask:
    """The benchmark's application with the ``http`` SMS provider on the fake gateway, texts batched."""
    app = make_bench_app(url)
    app.config.update(SMS_PROVIDER="http", SMS_HTTP_URL=gateway, SMS_HTTP_BODY=SMS_BODY, SMS_HTTP_BATCH_SIZE=batch,
                      SMS_HTTP_SUCCESS="json:code=0", SMS_DAILY_CAP=1_000_000, SMS_SIGN_NAME=SMS_SIGN,
                      OUTBOUND_ALLOWLIST=["127.0.0.1/32"])
    return app


def _sms_baseline_process(url: str, bodies: list[bytes], concurrency: int, barrier: Any, out: Any) -> None:
    import requests

    from scheduler.util.http import USER_AGENT

    pending = iter(bodies)
    errors: list[str] = []
    headers = {"Content-Type": "application/json", "Accept": "application/json, */*", "User-Agent": USER_AGENT,
               "Accept-Encoding": "identity"}

    def run() -> None:
        session = requests.Session()
        for body in pending:  # a shared iterator: each body once
            try:
                response = session.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)
                if response.status_code != 200 or response.json().get("code") != 0:
                    errors.append(f"status {response.status_code}")
            except (requests.RequestException, ValueError) as exc:
                errors.append(type(exc).__name__)
        session.close()

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    barrier.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((time.monotonic(), len(bodies), errors[:5], len(errors)))


def run_sms_baseline(url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """POST ``bodies`` with a bare requests pool of ``concurrency`` threads in a process of its own."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    child = ctx.Process(target=_sms_baseline_process, args=(url, bodies, concurrency, barrier, out), daemon=True)
    child.start()
    barrier.wait(timeout=120)
    started, cpu_started = time.monotonic(), machine_cpu_seconds()
    report = out.get(timeout=600)
    cpu_seconds = machine_cpu_seconds() - cpu_started
    child.join(30)
    return {"seconds": report[0] - started, "cpu_seconds": cpu_seconds, "requests": report[1], "errors": report[3],
            "error_samples": report[2]}


def run_sms(backend: str, url: str, receiver: Receiver, args: argparse.Namespace) -> SmsResult:
    """Load registrants, start the embedded pool on a daytime clock, dispatch, wait for every text ``sent``;
    then the baseline on the same bodies."""
    from scheduler.extensions import db
    from scheduler.reminders import wakeup
    from scheduler.reminders.workers import SenderPool
    from scheduler.util.time import set_clock

    total = args.sms_events * args.sms_registrants
    config = f"{backend}, embedded pool"
    print(f"{config}: SMS fan-out of {total:,} texts ({args.sms_events} events × {args.sms_registrants} registrants),"
          f" http provider, batches of {args.sms_batch} ...", flush=True)
    clock = daytime_clock()
    set_clock(clock)  # in this process only: why the SMS part runs the embedded pool, not `flask worker run`
    pool = None
    watch = None
    errors: list[str] = []
    try:
        app = make_sms_app(url, receiver.sms_url, args.sms_batch)
        with app.app_context():
            build_schema()
            loaded = load_registrants(args.sms_events, args.sms_registrants)
        watch = StatusWatch(url)
        pool = SenderPool(app, args.concurrency, name="sender")
        pool.start()
        wakeup.on_deliveries(pool.wake)
        time.sleep(1)
        receiver.reset()
        with app.app_context():
            at = clock().astimezone(SHANGHAI).isoformat(timespec="seconds")
            started, cpu_started = time.monotonic(), machine_cpu_seconds()
            queued, dispatch_seconds = dispatch_now()
            db.session.remove()
        if queued != total:
            raise RuntimeError(f"dispatch queued {queued} deliveries, expected {total}")
        finished, statuses = watch.wait_all_final(total, args.timeout)
        cpu_seconds = machine_cpu_seconds() - cpu_started
        received = receiver.stats()["sms"]
    finally:
        if watch is not None:
            watch.close()
        if pool is not None:
            pool.stop()
            wakeup.clear_callbacks()
        set_clock(None)
    errors += shut_down(app, [])
    bodies = sms_bodies(url, args.sms_batch)
    receiver.reset()
    baseline = run_sms_baseline(receiver.sms_url, bodies, args.concurrency)
    baseline_received = receiver.stats()["sms"]
    result = SmsResult(config, backend, args.concurrency, total, args.sms_batch, at, loaded["load_seconds"],
                       dispatch_seconds, finished - started, finished - started - dispatch_seconds, baseline["seconds"],
                       statuses, received, baseline_received, baseline["requests"], baseline["errors"], cpu_seconds,
                       baseline["cpu_seconds"], errors[:10] + [f"baseline: {e}" for e in baseline["error_samples"]])
    print(f"  ours {result.rate:,.0f} texts/s, {result.request_rate:,.0f} requests/s"
          f" ({received['requests']} requests, dispatch {dispatch_seconds:.2f} s, all sent after {result.total_seconds:.2f} s);"
          f" baseline {result.baseline_rate:,.0f} texts/s, {result.baseline_request_rate:,.0f} requests/s:"
          f" ratio {result.ratio:.2f}{'' if result.ok else '  (CHECKS FAILED)'}", flush=True)
    return result


# --------------------------------------------------------------------------- reporting


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_report(fanouts: Sequence[FanoutResult], lateness: Sequence[LatenessResult], args: argparse.Namespace,
                 sms: Sequence[SmsResult] = ()) -> None:
    """Print the tables."""
    if fanouts:
        print_fanout(fanouts, args)
    if lateness:
        print_lateness(lateness, args)
    if fanouts:
        print_memory(fanouts)
    if sms:
        print_sms(sms, args)


def print_fanout(fanouts: Sequence[FanoutResult], args: argparse.Namespace) -> None:
    """Table 1."""
    print()
    print(f"1. Fan-out: {args.events} due reminders × {args.endpoints} endpoints = {args.events * args.endpoints:,}"
          f" reminder.due webhooks, {args.concurrency} sender threads per process; from the dispatch's start to the last"
          " row persisted 'sent'")
    header = (f"{'configuration':<26} │ {'dispatch s':>10} {'total s':>8} {'ours/s':>8} │ {'baseline s':>10} {'base/s':>8} │"
              f" {'ratio':>6} {'send-only':>9} │ {'checks':>6} │ goal ≥ {FANOUT_GOAL}")
    print(header)
    print("─" * len(header))
    for r in fanouts:
        print(f"{r.config:<26} │ {r.dispatch_seconds:>10.2f} {r.total_seconds:>8.2f} {r.rate:>8,.0f} │"
              f" {r.baseline_seconds:>10.2f} {r.baseline_rate:>8,.0f} │ {r.ratio:>6.2f}"
              f" {r.baseline_seconds / r.send_seconds:>9.2f} │ {'ok' if r.ok else 'FAILED':>6} │ {_met(r.ratio >= FANOUT_GOAL)}")
    print("baseline = a bare requests pool (same processes × threads, one keep-alive Session per thread) POSTing the same"
          " bodies with the same signed headers, persisting nothing;")
    print("send-only = the ratio without the dispatch (from its commit to the last row sent); checks = every row sent,"
          " every message received once and verified, the baseline's too.")
    cpus = os.cpu_count() or 1
    for r in fanouts:
        print(f"  {r.config}: machine CPU {1000 * r.cpu_seconds / r.deliveries:.2f} ms per delivery"
              f" (busy {r.cpu_seconds / r.total_seconds / cpus:.0%} of {cpus} CPUs), baseline"
              f" {1000 * r.baseline_cpu_seconds / r.deliveries:.2f} ms (busy {r.baseline_cpu_seconds / r.baseline_seconds / cpus:.0%})")
    for r in fanouts:
        if not r.ok:
            print(f"  {r.config}: statuses {r.statuses}, received {r.received}, baseline received {r.baseline_received},"
                  f" baseline errors {r.baseline_errors}")
        for line in r.errors:
            print(f"  {r.config} log: {line}")


def print_lateness(lateness: Sequence[LatenessResult], args: argparse.Namespace) -> None:
    """Table 2."""
    if lateness:
        print()
        print(f"2. Lateness: {args.lateness_reminders:,} reminders due in the same second"
              f" ({args.lateness_endpoints} endpoint{'s' if args.lateness_endpoints > 1 else ''}), real scheduler on the"
              " real clock; from scheduled_at to arrival at the receiver")
        header = f"{'configuration':<32} │ {'received':>8} │ {'p50 s':>7} {'p99 s':>7} {'max s':>7} │ goal p99 ≤ {LATENESS_GOAL_S:g} s"
        print(header)
        print("─" * len(header))
        for x in lateness:
            print(f"{x.config:<32} │ {x.unique:>8,} │ {x.p50_s:>7.3f} {x.p99_s:>7.3f} {x.max_s:>7.3f} │"
                  f" {_met(x.p99_s <= LATENESS_GOAL_S and x.unique == x.reminders * x.endpoints)}")
            for line in x.errors:
                print(f"  {x.config} log: {line}")


def print_memory(fanouts: Sequence[FanoutResult]) -> None:
    """Table 3."""
    print()
    print("3. Memory of the senders during the fan-out (MiB): idle = the same process just before the dispatch")
    header = f"{'configuration':<26} {'process':>7} │ {'idle RSS':>8} {'idle peak':>9} │ {'fan-out peak':>12} {'end RSS':>8} │ {'peak-idle':>9}"
    print(header)
    print("─" * len(header))
    for r in fanouts:
        for i, m in enumerate(r.memory_kib):
            print(f"{r.config:<26} {('bench' if r.config.endswith('pool') else f'w{i}'):>7} │ {m['idle_rss'] / 1024:>8.1f}"
                  f" {m['idle_peak'] / 1024:>9.1f} │ {m['peak'] / 1024:>12.1f} {m['end_rss'] / 1024:>8.1f} │"
                  f" {(m['peak'] - m['idle_rss']) / 1024:>9.1f}")
    print("VmHWM from /proc/<pid>/status; for the embedded pool the process is this benchmark (its peak reset to its RSS"
          " just before the dispatch), for workers each `flask worker run`.")


def print_sms(sms: Sequence[SmsResult], args: argparse.Namespace) -> None:
    """Table 4."""
    print()
    print(f"4. SMS fan-out: {args.sms_events} due reminders × {args.sms_registrants:,} seated registrants ="
          f" {args.sms_events * args.sms_registrants:,} texts (each with its own short link) through the http provider,"
          f" SMS_HTTP_BODY {SMS_BODY} (a text per number), SMS_HTTP_BATCH_SIZE={args.sms_batch};"
          " from the dispatch's start to the last row persisted 'sent'")
    header = (f"{'configuration':<26} │ {'dispatch s':>10} {'total s':>8} {'texts/s':>8} {'requests':>8} {'req/s':>7} │"
              f" {'baseline s':>10} {'texts/s':>8} {'requests':>8} {'req/s':>7} │ {'ratio':>6} {'send-only':>9} │ {'checks':>6}")
    print(header)
    print("─" * len(header))
    for r in sms:
        print(f"{r.config:<26} │ {r.dispatch_seconds:>10.2f} {r.total_seconds:>8.2f} {r.rate:>8,.0f}"
              f" {r.received['requests']:>8,} {r.request_rate:>7,.0f} │ {r.baseline_seconds:>10.2f} {r.baseline_rate:>8,.0f}"
              f" {r.baseline_requests:>8,} {r.baseline_request_rate:>7,.0f} │ {r.ratio:>6.2f}"
              f" {r.baseline_seconds / r.send_seconds:>9.2f} │ {'ok' if r.ok else 'FAILED':>6}")
    print(f"ours = the embedded SenderPool ({args.concurrency} threads) in this process, on SQLite and on PostgreSQL alike:"
          " the application clock is set to a daytime moment (10:00 Asia/Shanghai, running) in this process,")
    print("  as quiet hours (21:00-08:00) would hold texts back at night; `flask worker run` subprocesses cannot have their"
          " clock set, so the SMS part runs no workers.")
    print(f"baseline = a bare requests pool ({args.concurrency} threads, one keep-alive Session each, in a process of its"
          f" own) POSTing the same texts in bodies of {args.sms_batch} to the same fake gateway, persisting nothing.")
    print("checks = every row sent, every text received exactly once (by delivery id) starting with 【, the baseline's too;"
          " the fake gateway answers {\"code\":0}.")
    cpus = os.cpu_count() or 1
    for r in sms:
        print(f"  {r.config}: app clock {r.app_clock}; {r.messages / max(r.received['requests'], 1):.1f} texts per request;"
              f" machine CPU {1000 * r.cpu_seconds / r.messages:.3f} ms per text (busy"
              f" {r.cpu_seconds / r.total_seconds / cpus:.0%} of {cpus} CPUs), baseline"
              f" {1000 * r.baseline_cpu_seconds / r.messages:.3f} ms (busy {r.baseline_cpu_seconds / r.baseline_seconds / cpus:.0%})")
        if not r.ok:
            print(f"  {r.config}: statuses {r.statuses}, received {r.received}, baseline received {r.baseline_received},"
                  f" baseline errors {r.baseline_errors}")
        for line in r.errors:
            print(f"  {r.config} log: {line}")


def write_json(fanouts: Sequence[FanoutResult], lateness: Sequence[LatenessResult], args: argparse.Namespace,
               skipped: dict[str, str], loadavg: dict[str, Any], sms: Sequence[SmsResult] = ()) -> Path:
    """Write the figures to ``bench/results/reminders-<timestamp>.json``; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"reminders-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        "benchmark": "bench.reminders",
        "created": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "pg_url"}
        | {"pg_url": None if args.sqlite_only else make_url(args.pg_url).render_as_string()},
        "goals": {"fanout_ratio_min": FANOUT_GOAL, "lateness_p99_max_s": LATENESS_GOAL_S},
        "platform": {"python": platform.python_version(), "machine": platform.machine(), "system": platform.platform(),
                     "cpus": os.cpu_count()},
        "load_average": loadavg,
        "skipped": skipped,
        "fanout": [asdict(r) | {"rate": r.rate, "baseline_rate": r.baseline_rate, "ratio": r.ratio, "ok": r.ok}
                   for r in fanouts],
        "lateness": [asdict(x) for x in lateness],
        "sms": [asdict(r) | {"rate": r.rate, "request_rate": r.request_rate, "baseline_rate": r.baseline_rate,
                             "baseline_request_rate": r.baseline_request_rate, "ratio": r.ratio, "ok": r.ok,
                             "clock": "embedded pool on an application clock set to 10:00 Asia/Shanghai"}
                for r in sms],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (it accepts the other benchmarks' options, so ``make bench BENCH_ARGS=...`` feeds all)."""
    parser = argparse.ArgumentParser(prog="python -m bench.reminders", description=DESCRIPTION)
    add_backend_args(parser, DEFAULT_PG_URL)
    parser.add_argument("--events", type=int, default=100, help="events whose reminder falls due [default: 100]")
    parser.add_argument("--endpoints", type=int, default=100, help="webhook endpoints each reminder goes to [default: 100]")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="sender threads per process (the pool, each worker, each baseline process) [default: 8]")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4],
                        help="PostgreSQL fan-out: numbers of worker processes, comma-separated [default: 1,4]")
    parser.add_argument("--lateness-reminders", type=int, default=1000, help="reminders due in the same second [default: 1000]")
    parser.add_argument("--lateness-endpoints", type=int, default=1, help="endpoints each of them goes to [default: 1]")
    parser.add_argument("--lateness-workers", type=int, default=1, help="workers beside the scheduler (PostgreSQL) [default: 1]")
    parser.add_argument("--lead", type=float, default=15,
                        help="seconds between planning the reminders and their due time (loading must fit) [default: 15]")
    parser.add_argument("--no-lateness", action="store_true", help="skip part 2")
    parser.add_argument("--sms-only", action="store_true", help="run part 4 (the SMS fan-out) only")
    parser.add_argument("--no-sms", action="store_true", help="skip part 4")
    parser.add_argument("--sms-events", type=int, default=10, help="SMS fan-out: events whose reminder falls due [default: 10]")
    parser.add_argument("--sms-registrants", type=int, default=1000,
                        help="SMS fan-out: seated registrants per event, each wanting texts [default: 1000]")
    parser.add_argument("--sms-batch", type=int, default=100, help="SMS fan-out: SMS_HTTP_BATCH_SIZE [default: 100]")
    parser.add_argument("--verify-every", type=int, default=1,
                        help="the receiver checks the signature of one message in N [default: 1, every one]")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for every delivery [default: 300]")
    for name in ("--requests", "--warmup", "--seed", "--series-days", "--runs", "--duration", "--rounds", "--load-warmup",
                 "--max-requests", "--threads"):
        parser.add_argument(name, help=argparse.SUPPRESS)  # the other benchmarks'; no effect here
    for name in ("--sizes", "--generator", "--check", "--wsgi-app"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--no-load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sqlite_only and args.pg_only:
        parser.error("--sqlite-only and --pg-only exclude each other")
    if not 1 <= args.concurrency <= 64 or not all(1 <= w <= 8 for w in args.workers) or not 1 <= args.lateness_workers <= 8:
        parser.error("--concurrency must be within 1-64, worker counts within 1-8")
    if not 1 <= args.events * args.endpoints <= 100_000 or not 1 <= args.lateness_reminders * args.lateness_endpoints <= 20_000:
        parser.error("at most 100,000 fan-out deliveries and 20,000 lateness deliveries")
    if args.sms_only and args.no_sms:
        parser.error("--sms-only and --no-sms exclude each other")
    if not 1 <= args.sms_events * args.sms_registrants <= 100_000 or args.sms_registrants > 10_000 or args.sms_events < 1:
        parser.error("at most 100,000 texts, 10,000 registrants per event")
    if not 1 <= args.sms_batch <= 1000:
        parser.error("--sms-batch must be within 1-1000")
    if args.verify_every < 1:
        parser.error("--verify-every must be at least 1")
    if not args.sqlite_only and make_url(args.pg_url).database in PROTECTED_DATABASES:
        parser.error(f"--pg-url: the database {make_url(args.pg_url).database!r} is not the benchmark's; use another")
    return args


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A SQLite database file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every configuration, print the report and write the JSON file."""
    args = parse_args(argv)
    fanouts: list[FanoutResult] = []
    lateness: list[LatenessResult] = []
    sms: list[SmsResult] = []
    skipped: dict[str, str] = {}
    loadavg = {"start": os.getloadavg()}
    started = time.perf_counter()
    receiver = Receiver(args.verify_every)
    receiver.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reminders-logs-") as logs:
            log_dir = Path(logs)
            webhooks, texts = not args.sms_only, not args.no_sms
            if not args.pg_only:
                if webhooks:
                    with sqlite_url() as url:
                        fanouts.append(run_fanout("sqlite", url, 0, receiver, args, log_dir))
                if webhooks and not args.no_lateness:
                    with sqlite_url() as url:
                        lateness.append(run_lateness("sqlite", url, 0, receiver, args, log_dir))
                if texts:
                    with sqlite_url() as url:
                        sms.append(run_sms("sqlite", url, receiver, args))
            if not args.sqlite_only:
                with postgresql(args, skipped) as usable:
                    for workers in args.workers if usable and webhooks else ():
                        fanouts.append(run_fanout("postgresql", args.pg_url, workers, receiver, args, log_dir))
                    if usable and webhooks and not args.no_lateness:
                        lateness.append(run_lateness("postgresql", args.pg_url, args.lateness_workers, receiver, args,
                                                     log_dir))
                    if usable and texts:
                        sms.append(run_sms("postgresql", args.pg_url, receiver, args))
    finally:
        receiver.stop()
    loadavg["end"] = os.getloadavg()
    print_report(fanouts, lateness, args, sms)
    print_closing(write_json(fanouts, lateness, args, skipped, loadavg, sms), started, loadavg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
