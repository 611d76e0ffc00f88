"""Benchmark of the nightly privacy purge: anonymizing 100,000 registrations (and the rest).

For each backend (SQLite in a temporary file, PostgreSQL in a dedicated ``bench_privacy``
database) the schema is built by the project's Alembic migrations and loaded with Core bulk
inserts (batches of 5,000):

* 1,000 events that ended two years ago with 100 registrations each (the 100,000 the purge
  anonymizes; a tenth waitlisted, a tenth cancelled, half checked in), and 200 events of last
  month with 100 each (20,000 it must leave alone);
* a personal calendar per number (60,000 numbers: each registered for two events; those whose
  registrations are all old lose it), 10,000 spent phone verifications, and 10,000 numbers with
  three old text choices each (opt-out, opt-in, opt-out: two go, the opt-out stays).

Then :func:`scheduler.privacy.retention.purge_personal_data` is timed, once as a dry run (counting
only) and once for real, on a fresh dataset per run (``--runs``, default 3; median, min-max), and
the result is checked (every old registration anonymized, every recent one intact). Figures go to
``bench/results/privacy-<timestamp>.json``. Run ``python -m bench.privacy --help``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.api import (
    RESULTS_DIR, TZ, UTC, add_backend_args, batched, build_schema, create_orgs, event_row, make_app, postgresql,
    print_closing, sqlite_url,
)
from scheduler.channels.sms.models import SmsChoice
from scheduler.events.models import Event
from scheduler.extensions import db
from scheduler.feeds.models import PersonalCalendar
from scheduler.privacy.models import PhoneVerification
from scheduler.privacy.retention import BATCH, purge_personal_data
from scheduler.registrations.models import Registration
from scheduler.util import time as clock
from scheduler.util.ids import new_ulid

DESCRIPTION = "Benchmark of the nightly privacy purge: 100,000 registrations of events a year past anonymized."
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_privacy"
#: The purge's "now": events of :data:`OLD_END` are two years past, those of :data:`RECENT_END` a month.
NOW = dt.datetime(2026, 6, 1, 3, 40, tzinfo=TZ).astimezone(UTC)
OLD_END = NOW - dt.timedelta(days=730)
RECENT_END = NOW - dt.timedelta(days=30)
PER_EVENT = 100


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def registration_rows(event_ids: Sequence[int], first_number: int, ended: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """:data:`PER_EVENT` registrations per event; number ``first_number + k`` registers for two events in a row."""
    for index, event_id in enumerate(event_ids):
        for seat in range(PER_EVENT):
            number = first_number + (index // 2) * PER_EVENT + seat
            created = ended - dt.timedelta(days=20, minutes=seat)
            status = "waitlisted" if seat % 10 == 8 else "cancelled" if seat % 10 == 9 else "registered"
            yield {
                "event_id": event_id, "name": f"参与者{number}", "phone": f"+86138{number:08d}", "phone_hash": f"{number:064x}",
                "channels": ["sms"], "status": status, "token_hash": _hex(rng), "created_at": created,
                "seated_at": created if status == "registered" else None, "promoted_at": None,
                "cancelled_at": created + dt.timedelta(days=1) if status == "cancelled" else None,
                "checked_in_at": ended - dt.timedelta(hours=2) if status == "registered" and seat % 2 else None,
                "consent_version": "2026-12", "consented_at": created, "phone_verified_at": None, "anonymized_at": None,
                "calendar_version": 1, "calendar_token_hash": _hex(rng),
            }


def load(old_events: int, recent_events: int, seed: int) -> dict[str, int]:
    """Insert the dataset; the row counts."""
    rng = random.Random(seed)
    org_ids = create_orgs()
    ids: dict[str, list[int]] = {}
    with db.engine.begin() as conn:
        for label, count, ended in (("old", old_events, OLD_END), ("recent", recent_events, RECENT_END)):
            rows = [event_row(f"bench-privacy-{label}-{i}@scheduler", "science_carnival", f"{label} #{i}", org_ids[i % len(org_ids)],
                              ended - dt.timedelta(hours=4), 240, "completed", rng) for i in range(count)]
            ids[label] = list(conn.execute(insert(Event.__table__).returning(Event.__table__.c.id), rows).scalars())
        old_numbers = old_events // 2 * PER_EVENT
        for label, first, ended in (("old", 0, OLD_END), ("recent", old_numbers, RECENT_END)):
            for batch in batched(registration_rows(ids[label], first, ended, rng), BATCH):
                conn.execute(insert(Registration.__table__), batch)
        numbers = old_numbers + recent_events // 2 * PER_EVENT
        for batch in batched(({"phone_hash": f"{n:064x}", "version": 1, "token_hash": _hex(rng), "issued_at": OLD_END}
                              for n in range(numbers)), BATCH):
            conn.execute(insert(PersonalCalendar.__table__), batch)
        spent = ({"id": new_ulid(), "phone_hash": f"{n:064x}", "code_hash": _hex(rng), "created_at": NOW - dt.timedelta(days=2),
                  "expires_at": NOW - dt.timedelta(days=2) + dt.timedelta(minutes=10), "attempts": 0, "verified_at": None,
                  "session_token_hash": None, "session_until": None} for n in range(10_000))
        for batch in batched(spent, BATCH):
            conn.execute(insert(PhoneVerification.__table__), batch)
        choices = ({"phone_hash": f"{n:064x}", "opted_out": step != 1, "source": "reply", "detail": "TD",
                    "created_at": OLD_END + dt.timedelta(days=step)} for n in range(10_000) for step in range(3))
        for batch in batched(choices, BATCH):
            conn.execute(insert(SmsChoice.__table__), batch)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    return {"old_registrations": old_events * PER_EVENT, "recent_registrations": recent_events * PER_EVENT,
            "calendars": numbers, "verifications": 10_000, "sms_choices": 30_000}


def check(expected: dict[str, int]) -> None:
    """Every old registration anonymized, every recent one intact."""
    anonymized = db.session.scalar(select(func.count()).where(Registration.anonymized_at.is_not(None), Registration.name.is_(None)))
    intact = db.session.scalar(select(func.count()).where(Registration.anonymized_at.is_(None), Registration.phone.is_not(None)))
    assert (anonymized, intact) == (expected["old_registrations"], expected["recent_registrations"]), (anonymized, intact)
    db.session.remove()


def run_case(backend: str, database: Callable[[], AbstractContextManager[str]], args: argparse.Namespace) -> dict[str, Any]:
    """Fresh data (in a fresh ``database()``), a dry run and a real run, ``--runs`` times; the timings and counts."""
    dry_runs, runs, counts, rows = [], [], None, None
    for _ in range(args.runs):
        with database() as url, make_app(url).app_context():
            build_schema()
            rows = load(args.old_events, args.recent_events, args.seed)
            clock.set_clock(lambda: NOW)
            try:
                started = time.perf_counter()
                planned = purge_personal_data(dry_run=True)
                dry_runs.append(time.perf_counter() - started)
                db.session.remove()
                started = time.perf_counter()
                purged = purge_personal_data()
                runs.append(time.perf_counter() - started)
            finally:
                clock.set_clock(None)
            assert planned == purged, (planned, purged)
            counts = purged
            check(rows)
            db.engine.dispose()
    assert counts is not None and rows is not None
    return {"backend": backend, "rows": rows, "purged": {**counts.__dict__}, "dry_run_s": dry_runs, "purge_s": runs,
            "registrations_per_s": counts.registrations / statistics.median(runs)}


def _span(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases, print the table and write the JSON file."""
    parser = argparse.ArgumentParser(prog="python -m bench.privacy", description=DESCRIPTION)
    add_backend_args(parser, DEFAULT_PG_URL)
    parser.add_argument("--runs", type=int, default=3, help="fresh datasets purged per backend [default: 3]")
    parser.add_argument("--old-events", type=int, default=1_000, help="events two years past, 100 registrations each [default: 1000]")
    parser.add_argument("--recent-events", type=int, default=200, help="events of last month, 100 registrations each [default: 200]")
    parser.add_argument("--seed", type=int, default=20261205)
    args, _ = parser.parse_known_args(argv)  # the other benchmarks' options (make bench BENCH_ARGS=...) are ignored
    started = time.perf_counter()
    results, skipped = [], {}
    if not args.pg_only:
        print("sqlite ...", flush=True)
        results.append(run_case("sqlite", sqlite_url, args))
    if not args.sqlite_only:
        with postgresql(args, skipped) as usable:
            if usable:
                print("postgresql ...", flush=True)
                results.append(run_case("postgresql", lambda: nullcontext(args.pg_url), args))  # schema rebuilt each run
    print(f"\n{'backend':<11} {'anonymized':>10} {'calendars':>9} {'codes':>6} {'choices':>7}  {'dry run':<22} {'purge':<22} {'registrations/s':>16}")
    for r in results:
        p = r["purged"]
        print(f"{r['backend']:<11} {p['registrations']:>10,} {p['calendars']:>9,} {p['verifications']:>6,} {p['sms_choices']:>7,}  "
              f"{_span(r['dry_run_s']):<22} {_span(r['purge_s']):<22} {r['registrations_per_s']:>16,.0f}")
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"privacy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"results": results, "skipped": skipped, "args": vars(args), "python": sys.version,
                                "platform": platform.platform()}, indent=2, default=str))
    print_closing(path, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
