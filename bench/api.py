"""Benchmark of the event list: one page of 50 events filtered by kind and month.

For each backend (SQLite in a temporary file, PostgreSQL in a dedicated ``bench``
database) and each size (1,000 and 100,000 events) the schema is built by the
project's Alembic migrations, the events are bulk-loaded with SQLAlchemy Core, and

* ``GET /api/v1/events?kind=matchmaking&month=2025-05&per_page=50`` is timed through
  the Flask test client (anonymous), and
* as baselines, the SQL that request runs is replayed on a bare DB-API cursor: the
  page ``SELECT`` alone, and every statement of the request in sequence.

It prints p50/p95 per case, the 100k / 1k ratios per backend (goal: at most 2), the
query plans on the largest dataset, and writes the figures to
``bench/results/api-<timestamp>.json``. Run ``python -m bench.api --help``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import flask_migrate
from flask import Flask
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError

from scheduler import create_app
from scheduler.events.kinds import Kind, Sector
from scheduler.events.models import Event, Status
from scheduler.extensions import db
from scheduler.orgs.models import OrgType
from scheduler.orgs.operations import upsert_org

#: The request under test and its filters.
KIND = Kind.MATCHMAKING.value
MONTH = "2025-05"
PER_PAGE = 50
REQUEST_PATH = f"/api/v1/events?kind={KIND}&month={MONTH}&per_page={PER_PAGE}"

DESCRIPTION = "Benchmark of the event list: one page of 50 events filtered by kind and month, 1k vs 100k events."
DEFAULT_SIZES = (1_000, 100_000)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
#: Events of ``KIND`` in ``MONTH`` present in every dataset, so the page is always full.
HOT_EVENTS = 80
TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
UTC = dt.UTC
#: Background events start uniformly in [2020-01-01, 2030-01-01) local time.
YEARS = (2020, 2030)
BATCH = 5_000
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Duration range (minutes) of each kind's background events: the longest is a 7-day tech week.
DURATIONS: dict[str, tuple[int, int]] = {
    Kind.SCIENCE_CARNIVAL.value: (240, 480),
    Kind.TECH_WEEK.value: (7 * 24 * 60, 7 * 24 * 60),
    Kind.STUDY_TOUR.value: (180, 480),
    Kind.MATCHMAKING.value: (120, 240),
    Kind.CONTEST.value: (180, 360),
}
#: Status shares of background events (the hot month's events are all published).
STATUSES = (
    (Status.PUBLISHED.value, 0.88),
    (Status.DRAFT.value, 0.06),
    (Status.COMPLETED.value, 0.03),
    (Status.CANCELLED.value, 0.03),
)


# --------------------------------------------------------------------------- results


@dataclass
class Timing:
    """Latency summary of one timed loop, in milliseconds."""

    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Timing:
        """Summarise ``samples_ms`` (at least two samples)."""
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(len(samples_ms), cuts[49], cuts[94], statistics.fmean(samples_ms), min(samples_ms))


@dataclass
class CaseResult:
    """Everything measured on one backend at one dataset size."""

    backend: str
    size: int
    total_matches: int
    page_items: int
    load_seconds: float
    endpoint: Timing
    sql_page: Timing
    sql_all: Timing
    statements: int
    plans: dict[str, list[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def kind_details(kind: str, starts_at: dt.datetime, rng: random.Random) -> dict[str, Any]:
    """Valid ``details`` of ``kind`` (as :func:`scheduler.events.kinds.validate_details` would store)."""
    if kind == Kind.MATCHMAKING.value:
        return {"sector": rng.choice(list(Sector)).value, "partners": [], "achievements_planned": rng.randint(5, 40)}
    if kind == Kind.STUDY_TOUR.value:
        return {"meeting_point": "江门市科技馆北门", "age_min": 10, "age_max": 16, "itinerary": []}
    if kind == Kind.CONTEST.value:
        local = starts_at.astimezone(TZ)
        return {
            "registration_deadline": _iso(local - dt.timedelta(days=30)),
            "final_at": _iso(local),
            "tracks": ["智能制造", "新能源"],
        }
    if kind == Kind.SCIENCE_CARNIVAL.value:
        return {"theme": "走近科学", "expected_attendance": rng.randint(500, 5000)}
    return {"sessions": []}


def event_row(
    uid: str, kind: str, title: str, org_id: int, starts_at: dt.datetime, minutes: int, status: str, rng: random.Random,
    weeks: int = 1,
) -> dict[str, Any]:
    """One row of ``events`` with every column filled consistently; ``weeks > 1`` makes a weekly series."""
    ends_at = starts_at + dt.timedelta(minutes=minutes)
    last_ends_at = ends_at + dt.timedelta(weeks=weeks - 1)
    created = starts_at - dt.timedelta(days=45)
    return {
        "uid": uid,
        "kind": kind,
        "title": title,
        "description": "",
        "org_id": org_id,
        "venue": "",
        "address": "",
        "latitude": round(22.58 + rng.uniform(-0.3, 0.3), 5),
        "longitude": round(113.08 + rng.uniform(-0.4, 0.4), 5),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "last_ends_at": last_ends_at,
        "span_seconds": int((last_ends_at - starts_at).total_seconds()),
        "all_day": False,
        "timezone": TZ_NAME,
        "rrule": f"FREQ=WEEKLY;COUNT={weeks}" if weeks > 1 else None,
        "status": status,
        "capacity": rng.choice((None, 50, 100, 200, 500)),
        "details": kind_details(kind, starts_at, rng),
        "reminder_offsets": None,
        "sequence": 0,
        "cancel_reason": "天气原因" if status == Status.CANCELLED.value else None,
        "published_at": None if status == Status.DRAFT.value else created + dt.timedelta(days=1),
        "cancelled_at": created + dt.timedelta(days=20) if status == Status.CANCELLED.value else None,
        "created_by_id": None,
        "created_at": created,
        "updated_at": created + dt.timedelta(days=1),
    }


def hot_month_bounds() -> tuple[dt.datetime, dt.datetime]:
    """Start (inclusive) and end (exclusive) of ``MONTH`` in the application's time zone, in UTC."""
    year, month = int(MONTH[:4]), int(MONTH[5:])
    first = dt.datetime(year, month, 1, tzinfo=TZ)
    following = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=TZ)
    return first.astimezone(UTC), following.astimezone(UTC)


def event_rows(size: int, org_ids: Sequence[int], seed: int, series_days: int = 0) -> Iterator[dict[str, Any]]:
    """The dataset of ``size`` events: ``HOT_EVENTS`` published ``KIND`` events in ``MONTH``, the rest background.

    ``series_days > 0`` turns the first background event into a weekly study-tour series
    spanning that many days (it raises ``max(span_seconds)``, which bounds the list's scan).
    """
    rng = random.Random(seed)
    kinds = [k.value for k in Kind]
    first, _ = hot_month_bounds()
    for i in range(HOT_EVENTS):  # days 3..27 of the month, 09:00-16:30 local
        local = first.astimezone(TZ) + dt.timedelta(days=2 + i % 25, hours=9 + (i // 25) * 2, minutes=30 * (i % 2))
        yield event_row(f"bench-hot-{i:03d}@scheduler", KIND, f"“邑科汇”对接会 热点 {i}", org_ids[i % len(org_ids)],
                        local.astimezone(UTC), 180, Status.PUBLISHED.value, rng)
    low = dt.datetime(YEARS[0], 1, 1, tzinfo=TZ).astimezone(UTC)
    high = dt.datetime(YEARS[1], 1, 1, tzinfo=TZ).astimezone(UTC)
    quarter_hours = int((high - low).total_seconds() // 900) - 7 * 24 * 4
    statuses = [status for status, _ in STATUSES]
    weights = [weight for _, weight in STATUSES]
    for i in range(size - HOT_EVENTS):
        kind = kinds[i % len(kinds)]
        starts_at = low + dt.timedelta(minutes=15 * rng.randrange(quarter_hours))
        minutes = rng.randint(*DURATIONS[kind]) // 15 * 15
        status = rng.choices(statuses, weights)[0]
        weeks = 1
        if i == 0 and series_days:
            kind, minutes, weeks = Kind.STUDY_TOUR.value, 240, series_days // 7 + 1
            starts_at = dt.datetime(2024, 9, 7, 9, tzinfo=TZ).astimezone(UTC)
        yield event_row(f"bench-{i:07d}@scheduler", kind, f"{kind} #{i}", rng.choice(org_ids), starts_at, minutes, status, rng,
                        weeks)


def batched(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of at most ``size`` rows."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def create_orgs() -> list[int]:
    """The city bureau and a few organizations below it; return the ids that organize events."""
    bureau = upsert_org("bureau", "江门市科学技术局", "Jiangmen Science and Technology Bureau", OrgType.BUREAU)
    orgs = [bureau]
    for county in ("pengjiang", "jianghai", "xinhui", "taishan"):
        name_zh, name_en = f"{county}科技办", f"{county.title()} office"
        orgs.append(upsert_org(f"{county}-office", name_zh, name_en, OrgType.COUNTY_OFFICE, bureau, county))
    orgs.append(upsert_org("wyu", "五邑大学", "Wuyi University", OrgType.UNIVERSITY, bureau))
    ids = [org.id for org in orgs]  # before the commit expires them: no new transaction (lock) afterwards
    db.session.commit()
    db.session.remove()
    return ids


def load_dataset(size: int, seed: int, series_days: int = 0) -> None:
    """Insert the organizations and ``size`` events (Core executemany in batches); ANALYZE on PostgreSQL."""
    org_ids = create_orgs()
    table = Event.__table__
    with db.engine.begin() as conn:
        for batch in batched(event_rows(size, org_ids, seed, series_days), BATCH):
            conn.execute(insert(table), batch)
    if db.engine.dialect.name == "postgresql":
        # VACUUM ANALYZE rather than ANALYZE alone: it also sets the visibility map, as
        # autovacuum would on a live table, and keeps autovacuum from starting mid-measurement.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))


# --------------------------------------------------------------------------- databases


def make_app(url: str) -> Flask:
    """The application on ``url``, with the background scheduler off."""
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SCHEDULER_MODE": "off", "RATELIMIT_STORAGE_URI": "memory://"})


def build_schema() -> None:
    """Build the schema from empty with the project's migrations (PostgreSQL: schema ``public`` recreated first)."""
    if db.engine.dialect.name == "postgresql":
        reset_pg_schema(db.engine)
    logging.disable(logging.INFO)  # Alembic's per-revision INFO lines
    try:
        flask_migrate.upgrade()
    finally:
        logging.disable(logging.NOTSET)
    db.session.remove()


def reset_pg_schema(engine: Engine) -> None:
    """Drop everything in schema ``public`` of ``engine``'s database."""
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


def ensure_pg_database(url: str) -> str | None:
    """Create ``url``'s database if missing; return why PostgreSQL cannot be used, or ``None``."""
    target: URL = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
                print(f"Created database {target.database!r}.")
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    finally:
        admin.dispose()
    return None


@contextmanager
def postgresql(args: argparse.Namespace, skipped: dict[str, str]) -> Iterator[bool]:
    """Whether the ``--pg-url`` database can be used (if not, say why and note it in ``skipped``);
    its schema is reset afterwards unless ``--keep-pg``."""
    reason = ensure_pg_database(args.pg_url)
    if reason:
        skipped["postgresql"] = reason
        print(f"PostgreSQL skipped: cannot reach {make_url(args.pg_url).render_as_string()}: {reason}", flush=True)
        yield False
        return
    try:
        yield True
    finally:
        if not args.keep_pg:
            engine = create_engine(args.pg_url)
            reset_pg_schema(engine)
            engine.dispose()


def print_closing(path: Path, started: float, loadavg: dict[str, tuple[float, ...]] | None = None) -> None:
    """The last lines of every benchmark: the load average (when kept) and where the figures went."""
    print()
    if loadavg:
        print(f"Load average (1, 5, 15 min) at start {', '.join(f'{x:.2f}' for x in loadavg['start'])},"
              f" at end {', '.join(f'{x:.2f}' for x in loadavg['end'])} ({os.cpu_count()} CPUs).")
    print(f"Figures written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
          f" ({time.perf_counter() - started:.0f} s in all).")


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A SQLite database file in a temporary directory, removed (with its WAL files) afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


# --------------------------------------------------------------------------- measuring

Statement = tuple[str, Any]


def capture_statements(app: Flask) -> tuple[list[Statement], dict[str, Any]]:
    """Run the request once; return the SQL it executed (as sent to the driver) and its JSON body."""
    captured: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = app.test_client().get(REQUEST_PATH)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if response.status_code != 200:
        raise RuntimeError(f"{REQUEST_PATH} answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return captured, response.get_json()


def page_statement(statements: Sequence[Statement]) -> Statement:
    """The list query of the page among the request's statements."""
    for statement, params in statements:
        flat = " ".join(statement.split()).upper()
        if " LIMIT " in flat and not flat.startswith("SELECT COUNT("):
            return statement, params
    raise RuntimeError("the page SELECT was not found among the request's statements")


def count_statement(statements: Sequence[Statement]) -> Statement:
    """The ``count(*)`` of all matches among the request's statements."""
    for statement, params in statements:
        if statement.lstrip().lower().startswith("select count("):
            return statement, params
    raise RuntimeError("the count SELECT was not found among the request's statements")


def check_page(body: dict[str, Any]) -> None:
    """Fail loudly unless the page is full and matches the filters."""
    items = body["items"]
    start, end = hot_month_bounds()
    if len(items) != PER_PAGE:
        raise RuntimeError(f"expected a full page of {PER_PAGE}, got {len(items)} (total {body.get('total')})")
    for item in items:
        starts = dt.datetime.fromisoformat(item["starts_at"])
        ends = dt.datetime.fromisoformat(item["ends_at"])
        if item["kind"] != KIND or not (starts < end and ends > start):
            raise RuntimeError(f"item outside the filters: {item['id']} {item['kind']} {item['starts_at']}")


def timed(call: Callable[[], object], warmup: int, runs: int) -> Timing:
    """Call ``call`` ``warmup`` times, then time ``runs`` calls with :func:`time.perf_counter`."""
    for _ in range(warmup):
        call()
    gc.collect()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return Timing.of(samples)


def explain(cursor: Any, dialect: str, statement: str, params: Any) -> list[str]:
    """The plan of ``statement``: ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite."""
    if dialect == "postgresql":
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        return [row[0] for row in cursor.fetchall()]
    cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in cursor.fetchall():
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def run_case(backend: str, url: str, size: int, args: argparse.Namespace) -> CaseResult:
    """Build, load and measure one backend at one size."""
    app = make_app(url)
    try:
        with app.app_context():
            build_schema()
            started = time.perf_counter()
            load_dataset(size, args.seed, args.series_days)
            load_seconds = time.perf_counter() - started
        statements, body = capture_statements(app)
        check_page(body)
        client = app.test_client()

        def request() -> None:
            response = client.get(REQUEST_PATH)
            if response.status_code != 200:
                raise RuntimeError(f"{REQUEST_PATH} answered {response.status_code}")

        endpoint = timed(request, args.warmup, args.requests)
        with app.app_context():
            dialect = db.engine.dialect.name
            raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()

            def run(statement: str, params: Any) -> None:
                cursor.execute(statement, params)
                cursor.fetchall()

            page = page_statement(statements)
            sql_page = timed(lambda: run(*page), args.warmup, args.requests)

            def run_all() -> None:
                for statement, params in statements:
                    run(statement, params)

            sql_all = timed(run_all, args.warmup, args.requests)
            plans = {
                "page": explain(cursor, dialect, *page),
                "count": explain(cursor, dialect, *count_statement(statements)),
            }
            cursor.close()
        finally:
            raw.close()
        return CaseResult(backend, size, body["total"], len(body["items"]), load_seconds, endpoint, sql_page, sql_all,
                          len(statements), plans)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --------------------------------------------------------------------------- reporting


def ratios(results: Sequence[CaseResult]) -> list[dict[str, Any]]:
    """Per backend, the largest size's latencies over the smallest's (p50 and p95, endpoint and bare SQL)."""
    out = []
    for backend in dict.fromkeys(r.backend for r in results):
        cases = sorted((r for r in results if r.backend == backend), key=lambda r: r.size)
        if len(cases) < 2:
            continue
        small, large = cases[0], cases[-1]
        entry: dict[str, Any] = {"backend": backend, "sizes": [small.size, large.size]}
        for part in ("endpoint", "sql_page", "sql_all"):
            a, b = getattr(small, part), getattr(large, part)
            entry[part] = {"p50": b.p50_ms / a.p50_ms, "p95": b.p95_ms / a.p95_ms}
        entry["goal_met"] = entry["endpoint"]["p50"] <= 2 and entry["endpoint"]["p95"] <= 2
        out.append(entry)
    return out


def print_report(results: Sequence[CaseResult], ratio_rows: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the latency table, the ratios and the plans of the largest dataset."""
    print()
    print(f"GET {REQUEST_PATH}  (anonymous; {args.warmup} warm-up, {args.requests} timed requests; ms)")
    header = (f"{'backend':<10} {'events':>8} {'matches':>7} {'load s':>6} │ {'endpoint':^15} │ {'SQL page':^15} │"
              f" {'SQL all stmts':^15} │ {'app adds':>8}")
    sub = f"{'':<10} {'':>8} {'':>7} {'':>6} │ {'p50':>7} {'p95':>7} │ {'p50':>7} {'p95':>7} │ {'p50':>7} {'p95':>7} │ {'p50':>8}"
    print(header)
    print(sub)
    print("─" * len(header))
    for r in results:
        print(f"{r.backend:<10} {r.size:>8,} {r.total_matches:>7} {r.load_seconds:>6.1f} │"
              f" {r.endpoint.p50_ms:>7.2f} {r.endpoint.p95_ms:>7.2f} │ {r.sql_page.p50_ms:>7.3f} {r.sql_page.p95_ms:>7.3f} │"
              f" {r.sql_all.p50_ms:>7.3f} {r.sql_all.p95_ms:>7.3f} │ {r.endpoint.p50_ms - r.sql_all.p50_ms:>8.2f}")
    print("SQL page = the page SELECT alone; SQL all = the request's statements in sequence, both on a bare DB-API cursor;")
    print("app adds = endpoint p50 - SQL all p50 (Flask, validation, ORM, presentation, JSON).")
    if ratio_rows:
        print()
        columns = ("endpoint p50", "endpoint p95", "SQL page p50", "SQL page p95")
        print(f"{'ratio large/small':<18} " + " ".join(f"{c:>12}" for c in columns) + "  goal ≤ 2 (endpoint)")
        for row in ratio_rows:
            label = f"{row['backend']} {row['sizes'][1] // 1000}k/{row['sizes'][0] // 1000}k"
            print(f"{label:<18} {row['endpoint']['p50']:>12.2f} {row['endpoint']['p95']:>12.2f}"
                  f" {row['sql_page']['p50']:>12.2f} {row['sql_page']['p95']:>12.2f}  {'met' if row['goal_met'] else 'NOT MET'}")
    for backend in dict.fromkeys(r.backend for r in results):
        largest = max((r for r in results if r.backend == backend), key=lambda r: r.size)
        for name, lines in largest.plans.items():
            print()
            print(f"Plan of the {name} query, {backend}, {largest.size:,} events:")
            for line in lines:
                print("  " + line)


def write_json(results: Sequence[CaseResult], ratio_rows: Sequence[dict[str, Any]], args: argparse.Namespace,
               skipped: dict[str, str]) -> Path:
    """Write the figures to ``bench/results/api-<timestamp>.json``; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"api-{stamp}.json"
    document = {
        "benchmark": "bench.api",
        "request": f"GET {REQUEST_PATH}",
        "created": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"sizes": args.sizes, "warmup": args.warmup, "requests": args.requests, "seed": args.seed,
                     "hot_events": HOT_EVENTS, "series_days": args.series_days,
                     "pg_url": None if args.sqlite_only else make_url(args.pg_url).render_as_string()},
        "platform": {"python": platform.python_version(), "machine": platform.machine(), "system": platform.platform()},
        "skipped": skipped,
        "results": [asdict(r) for r in results],
        "ratios": list(ratio_rows),
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- main


def add_backend_args(parser: argparse.ArgumentParser, default_pg_url: str) -> None:
    """The options every benchmark shares: which databases to run on."""
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--pg-only", action="store_true", help="skip SQLite")
    parser.add_argument("--pg-url", default=default_pg_url, help=f"PostgreSQL database to use (created if missing; its schema "
                        f"public is dropped and rebuilt) [default: {default_pg_url}]")
    parser.add_argument("--keep-pg", action="store_true", help="leave the last dataset in the PostgreSQL database")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=DESCRIPTION)
    add_backend_args(parser, DEFAULT_PG_URL)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case [default: 200]")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first [default: 20]")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(DEFAULT_SIZES),
                        help="dataset sizes, comma-separated [default: 1000,100000]")
    parser.add_argument("--seed", type=int, default=20250501, help="random seed of the background events")
    parser.add_argument("--series-days", type=int, default=0, metavar="DAYS",
                        help="add one weekly series spanning DAYS (at most 366): the list must stay as fast with it")
    args = parser.parse_args(argv)
    if args.sqlite_only and args.pg_only:
        parser.error("--sqlite-only and --pg-only exclude each other")
    if args.requests < 2:
        parser.error("--requests must be at least 2")
    if not 0 <= args.series_days <= 366:
        parser.error("--series-days must be between 0 and 366")
    if min(args.sizes) <= HOT_EVENTS:
        parser.error(f"every size must be at least {HOT_EVENTS + 1} (the hot month's events and one more)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case, print the report and write the JSON file."""
    args = parse_args(argv)
    results: list[CaseResult] = []
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    if not args.pg_only:
        for size in args.sizes:
            print(f"sqlite: {size:,} events ...", flush=True)
            with sqlite_url() as url:
                results.append(run_case("sqlite", url, size, args))
    if not args.sqlite_only:
        with postgresql(args, skipped) as usable:
            for size in args.sizes if usable else ():
                print(f"postgresql: {size:,} events ...", flush=True)
                results.append(run_case("postgresql", args.pg_url, size, args))
    ratio_rows = ratios(results)
    print_report(results, ratio_rows, args)
    print_closing(write_json(results, ratio_rows, args, skipped), started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
