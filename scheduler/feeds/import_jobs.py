"""Background calendar imports: asked for by the page and the API, run by the scheduler's process.

A URL, or a file larger than ``IMPORT_INLINE_BYTES``, is never imported inside a web
request: the request records an :class:`ImportJob` and answers at once; the scheduler's
process (the embedded one, or ``flask scheduler run``) runs it and keeps its progress on the
row, which the job's page shows. Each step commits before the next long wait: the job is
claimed in one short transaction, the URL fetched with no transaction open (nothing is
locked while a slow server answers), the file read, then the events imported a batch at a
time, each batch committed with the progress. A job whose process died is marked failed
when its heartbeat is older than :data:`STALE` (importing again is safe: events are matched
by UID).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from flask import current_app
from sqlalchemy import delete, select, update

from scheduler.auth.models import User
from scheduler.extensions import db
from scheduler.feeds.import_errors import N_, ImportRejected, Problem
from scheduler.feeds.importer import ImportSummary, Step, fetch_calendar, prepare_import
from scheduler.feeds.models import ImportJob, ImportStatus
from scheduler.orgs.models import Organization
from scheduler.util.time import now

log = logging.getLogger(__name__)

#: A running job whose heartbeat is older than this was interrupted (its process stopped).
STALE = dt.timedelta(minutes=10)
#: Progress is committed at least this often while importing (seconds), and every :data:`BATCH` events.
PROGRESS_SECONDS = 1.0
BATCH = 50
#: How long finished jobs are kept (their reports), and a dry run's file (to import it after checking).
KEEP_JOBS = dt.timedelta(days=30)
KEEP_DRY_RUN_FILE = dt.timedelta(days=1)

_on_queued: list[Callable[[], None]] = []


def on_queued(callback: Callable[[], None]) -> None:
    """Call ``callback`` after a job is queued in this process (the embedded scheduler runs it at once)."""
    _on_queued.append(callback)


def clear_callbacks() -> None:
    """Forget the callbacks (the scheduler stopped)."""
    _on_queued.clear()


def inline_bytes() -> int:
    """Uploads up to this size are imported while the browser waits; larger ones in the background."""
    return int(current_app.config.get("IMPORT_INLINE_BYTES", 256 * 1024))


def queue_import(*, org: Organization, user: User | None, source: str, data: bytes | None, kind: str, draft: bool = False,
                 dry_run: bool = False, atomic: bool = False) -> ImportJob:
    """Record an import of ``data`` (an upload) or of the URL ``source`` (``data`` is ``None``); flushed, not committed."""
    job = ImportJob(org_id=org.id, user_id=user.id if user else None, source=source[:2000], data=data, kind=kind,
                    draft=draft, dry_run=dry_run, atomic=atomic, status=ImportStatus.QUEUED.value, report={},
                    created_at=now())
    db.session.add(job)
    db.session.flush()
    return job


def again(job: ImportJob, user: User | None) -> ImportJob:
    """A new job importing what the dry run ``job`` checked (same source and options)."""
    return queue_import(org=db.session.get(Organization, job.org_id), user=user, source=job.source, data=job.data,
                        kind=job.kind, draft=job.draft, atomic=job.atomic)


def runs_inline(job: ImportJob) -> bool:
    """Whether :func:`start` runs ``job`` at once (a small upload: nothing to fetch, quick)."""
    return job.data is not None and len(job.data) <= inline_bytes()


def queued() -> None:
    """A job was queued and committed: wake whatever runs jobs in this process."""
    for callback in list(_on_queued):
        callback()


def _claim(job_id: int) -> bool:
    moment = now()
    claimed = db.session.execute(
        update(ImportJob).where(ImportJob.id == job_id, ImportJob.status == ImportStatus.QUEUED.value)
        .values(status=ImportStatus.RUNNING.value, started_at=moment, heartbeat_at=moment, phase="reading")
    ).rowcount
    db.session.commit()
    return claimed == 1


def _fail_interrupted() -> None:
    stopped = db.session.execute(
        update(ImportJob).where(ImportJob.status == ImportStatus.RUNNING.value, ImportJob.heartbeat_at < now() - STALE)
        .values(status=ImportStatus.FAILED.value, phase=None, finished_at=now(), data=None, report={"problems": [
            Problem(N_("The import was interrupted (its process stopped). Import the calendar again: "
                       "events already imported are updated, not duplicated.")).as_dict()]})
    ).rowcount
    if stopped:
        log.warning("%s interrupted import(s) marked failed", stopped)
    db.session.commit()


def run_pending(limit: int | None = None) -> int:
    """Run queued jobs, oldest first (at most ``limit``); the number run. Several processes may
    call this at once: each job is claimed by one."""
    _fail_interrupted()
    ran = 0
    while limit is None or ran < limit:
        job_id = db.session.scalar(select(ImportJob.id).where(ImportJob.status == ImportStatus.QUEUED.value)
                                   .order_by(ImportJob.id).limit(1))
        db.session.commit()
        if job_id is None:
            break
        if _claim(job_id):
            run_job(job_id)
            ran += 1
    return ran


def start(job: ImportJob) -> bool:
    """Commit the queued ``job``, then run it here if it is a small upload (:func:`inline_bytes`; nothing
    to fetch, quick), else wake what runs jobs in this process. Whether it ran."""
    job_id, inline = job.id, runs_inline(job)
    db.session.commit()
    if not inline:
        queued()
        return False
    if _claim(job_id):
        run_job(job_id)
    return True


def run_job(job_id: int) -> None:
    """Run the claimed job ``job_id`` to its end, committing as it goes; never raises."""
    job = db.session.get(ImportJob, job_id)
    assert job is not None
    source, data, options = job.source, job.data, (job.kind, job.draft, job.dry_run, job.atomic)
    try:
        if data is None:
            job.phase = "fetching"
            db.session.commit()  # nothing is held while the other server answers
            data = fetch_calendar(source)
            job = _beat(job_id, phase="reading")
        summary = _import(job, data, *options)
    except ImportRejected as exc:
        db.session.rollback()
        _finish(job_id, ImportStatus.FAILED, problems=exc.problems)
        return
    except Exception:  # noqa: BLE001  (the job's page must say it ended, whatever went wrong)
        db.session.rollback()
        log.exception("import job %s failed", job_id)
        _finish(job_id, ImportStatus.FAILED, problems=[Problem(N_(
            "The import stopped on an unexpected error; what was imported before it stays. "
            "Import the calendar again, or ask an administrator."))])
        return
    _finish(job_id, ImportStatus.DONE, summary=summary)


def _beat(job_id: int, **values: object) -> ImportJob:
    db.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(heartbeat_at=now(), **values))
    db.session.commit()
    job = db.session.get(ImportJob, job_id)
    assert job is not None
    return job


def _import(job: ImportJob, data: bytes, kind: str, draft: bool, dry_run: bool, atomic: bool) -> ImportSummary:
    org = db.session.get(Organization, job.org_id)
    user = db.session.get(User, job.user_id) if job.user_id else None
    assert org is not None
    prepared = prepare_import(data, org=org, source=job.source, kind=kind, draft=draft, atomic=atomic)
    if dry_run:
        return prepared.checked()
    job_id = job.id
    _beat(job_id, phase="importing", total=len(prepared.plan.steps))
    return prepared.apply(user=user, on_step=_Progress(job_id, commit=not atomic), atomic=atomic)


class _Progress:
    """Counts imported events and commits them with the progress, a batch at a time (an all-or-nothing
    import commits only at its end)."""

    def __init__(self, job_id: int, *, commit: bool) -> None:
        self.job_id, self.commit, self.done, self.last = job_id, commit, 0, time.monotonic()

    def __call__(self, _step: Step) -> None:
        self.done += 1
        if self.commit and (self.done % BATCH == 0 or time.monotonic() - self.last >= PROGRESS_SECONDS):
            _beat(self.job_id, done=self.done)
            self.last = time.monotonic()


def _finish(job_id: int, status: ImportStatus, *, summary: ImportSummary | None = None,
            problems: list[Problem] | tuple[Problem, ...] = ()) -> None:
    job = db.session.get(ImportJob, job_id)
    assert job is not None
    job.status, job.phase, job.finished_at, job.heartbeat_at = status.value, None, now(), now()
    if summary is not None:
        job.created, job.updated, job.unchanged = summary.created, summary.updated, summary.unchanged
        job.done = job.total = summary.total
        problems = summary.problems
    job.report = {"problems": [p.as_dict() for p in problems],
                  "notes": [p.as_dict() for p in (summary.notes if summary else ())]}
    if not (job.dry_run and status == ImportStatus.DONE):
        job.data = None  # kept after a dry run only, to import what was checked
    db.session.commit()


def summary_of(job: ImportJob) -> ImportSummary:
    """A finished job's report, as the import returned it."""
    report = job.report or {}
    org = db.session.get(Organization, job.org_id)
    return ImportSummary(
        org.slug if org else "", job.source, job.created, job.updated, job.unchanged,
        tuple(Problem.from_dict(p) for p in report.get("problems", [])),
        tuple(Problem.from_dict(p) for p in report.get("notes", [])), dry_run=job.dry_run,
    )


def purge_jobs(at: dt.datetime | None = None) -> int:
    """Delete jobs finished over :data:`KEEP_JOBS` ago and drop dry runs' files after :data:`KEEP_DRY_RUN_FILE`."""
    at = at or now()
    db.session.execute(update(ImportJob).where(ImportJob.data.is_not(None), ImportJob.status == ImportStatus.DONE.value,
                                               ImportJob.finished_at < at - KEEP_DRY_RUN_FILE).values(data=None))
    deleted = db.session.execute(delete(ImportJob).where(ImportJob.finished_at < at - KEEP_JOBS)).rowcount
    db.session.commit()
    return deleted
