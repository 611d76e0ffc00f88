"""``POST /api/v1/imports`` and ``GET /api/v1/imports/<id>``: import events from another calendar.

A small upload is imported in the request (200 with the report); a URL or a larger file
is imported in the background (202, ``Location`` of the import to poll).
"""
from __future__ import annotations

from typing import Annotated, Literal

from flask import Response, jsonify, request, url_for
from pydantic import Field, StringConstraints, ValidationError

from scheduler.api import api_user, bp, endpoint
from scheduler.api.endpoint import parse_body
from scheduler.api.errors import Invalid, NotFound, UnsupportedMediaType, from_validation_error
from scheduler.api.schemas import Body, Out
from scheduler.auth.models import Role
from scheduler.auth.permissions import can, require_role, require_user
from scheduler.events.kinds import Kind
from scheduler.extensions import db
from scheduler.feeds import import_jobs
from scheduler.feeds.import_errors import ImportRejected, Problem
from scheduler.feeds.importer import UPLOAD_OVERHEAD, check_source_url, current_limits, upload_name
from scheduler.feeds.models import ImportJob, ImportStatus
from scheduler.orgs.queries import get_org_by_slug


class ImportOptions(Body):
    """Where the events go and how they are imported."""

    org: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        description="Slug of the organization the events belong to."
    )
    kind: Kind = Field(Kind.SCIENCE_CARNIVAL, description="Kind of the events whose CATEGORIES name none of ours.")
    draft: bool = Field(False, description="Import new events as drafts instead of publishing them.")
    dry_run: bool = Field(False, description="Only check: report what importing would do, save nothing.")
    atomic: bool = Field(False, description="All or nothing: import no event if any one cannot be imported.")


class ImportFromUrl(ImportOptions):
    """Import the calendar at a public http(s) URL (no redirects are followed)."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ImportUpload(ImportOptions):
    """Import an uploaded iCalendar file (``multipart/form-data``)."""

    file: bytes = Field(description="The .ics file.")


class ImportProblem(Out):
    """An event left out (or a note on how one was read): where in the file, and why."""

    line: int | None = Field(None, description="Line of the file where the event begins.")
    uid: str | None = None
    summary: str | None = None
    reason: str


class ImportJobOut(Out):
    """An import: its progress while it runs, then what it did."""

    id: int
    status: Literal["queued", "running", "done", "failed"]
    phase: str | None = Field(None, description="While running: fetching, reading or importing.")
    dry_run: bool = Field(description="Nothing was saved: the counts say what importing would do.")
    org: str
    source: str = Field(description="The file name or URL, kept on each imported event.")
    done: int = Field(description="Events imported so far (of `total_to_import`).")
    total_to_import: int
    created: int
    updated: int
    unchanged: int
    total: int = Field(description="Events imported (created, updated or unchanged).")
    rejected: int = Field(description="Events of the file left out; each is in `problems`.")
    problems: list[ImportProblem]
    notes: list[ImportProblem]
    url: str = Field(description="Where to read this import again (GET).")


def _problem(problem: Problem) -> ImportProblem:
    return ImportProblem(line=problem.line, uid=problem.uid, summary=problem.summary, reason=problem.reason)


def job_out(job: ImportJob) -> ImportJobOut:
    """The API's view of ``job``."""
    summary = import_jobs.summary_of(job)
    return ImportJobOut(
        id=job.id, status=job.status, phase=job.phase, dry_run=job.dry_run, org=summary.org, source=job.source,
        done=job.done, total_to_import=job.total, created=job.created, updated=job.updated, unchanged=job.unchanged,
        total=summary.total, rejected=summary.rejected, problems=[_problem(p) for p in summary.problems],
        notes=[_problem(p) for p in summary.notes], url=url_for("api.get_import", job_id=job.id),
    )


def _upload() -> tuple[ImportOptions, bytes, str]:
    storage = request.files.get("file")
    if storage is None:
        raise Invalid(fields={"file": "Upload the .ics file in the multipart field 'file'."})
    fields = {key: request.form[key] for key in request.form if key != "file"}
    try:
        options = ImportOptions.model_validate(fields)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    return options, storage.read(current_limits().max_bytes + 1), upload_name(storage.filename)


@endpoint(
    bp, "/imports", "POST", summary="Import events from another calendar", tag="imports", response=ImportJobOut,
    consumes={"application/json": ImportFromUrl, "multipart/form-data": ImportUpload}, errors=(202,),
)
def create_import() -> ImportJobOut | Response:
    """Editors and managers of the organization: upload an .ics file (multipart field `file`) or send JSON with a `url`.
    Events keep their source UID, so importing again updates them instead of adding copies. Events that cannot be
    imported are left out and listed in `problems` (line, UID, reason); the others are imported (`atomic` for all or
    nothing, `dry_run` to only check). An upload of at most `IMPORT_INLINE_BYTES` is imported in the request (200);
    a URL or a larger file in the background: 202 with `Location`, the import to poll (`GET /api/v1/imports/{id}`).
    A file that cannot be read, or whose every event is refused, is a 422 listing every problem in `fields`
    (`file`, `url` or `events.<UID>`), and nothing is saved."""
    user = require_user(api_user())
    limits = current_limits()
    request.max_content_length = limits.max_bytes + UPLOAD_OVERHEAD  # before anything reads the body
    data: bytes | None = None
    if request.mimetype == "multipart/form-data":
        options, data, source = _upload()
    elif request.is_json:
        body = parse_body(ImportFromUrl)
        assert isinstance(body, ImportFromUrl)
        options, source = body, body.url
    else:
        raise UnsupportedMediaType("Upload a file as multipart/form-data (field 'file'), or send JSON with a 'url'.")
    org = get_org_by_slug(options.org)
    if org is None:
        raise Invalid(fields={"org": "No organization with this slug."})
    require_role(user, org.id, Role.EDITOR)  # before fetching anything on the user's behalf
    if data is None:
        try:
            check_source_url(source)
        except ImportRejected as exc:
            raise Invalid(exc.message, fields=exc.fields(), code="invalid_calendar") from None
    job = import_jobs.queue_import(org=org, user=user, source=source, data=data, kind=options.kind.value,
                                   draft=options.draft, dry_run=options.dry_run, atomic=options.atomic)
    job_id = job.id
    if not import_jobs.start(job):
        response = jsonify(job_out(job).model_dump(mode="json"))
        response.status_code = 202
        response.headers["Location"] = url_for("api.get_import", job_id=job_id)
        return response
    job = db.session.get(ImportJob, job_id)
    assert job is not None
    if job.status == ImportStatus.FAILED.value:
        refused = ImportRejected(list(import_jobs.summary_of(job).problems))
        raise Invalid(refused.message, fields=refused.fields(), code="invalid_calendar")
    return job_out(job)


@endpoint(bp, "/imports/<int:job_id>", "GET", summary="An import's progress and report", tag="imports", response=ImportJobOut)
def get_import(job_id: int) -> ImportJobOut:
    """Editors and managers of the import's organization: its status (`queued`, `running`, `done`, `failed`), progress
    and, once finished, what it did."""
    user = require_user(api_user())
    job = db.session.get(ImportJob, job_id)
    if job is None or not can(user, job.org_id, Role.EDITOR):
        raise NotFound()
    return job_out(job)
