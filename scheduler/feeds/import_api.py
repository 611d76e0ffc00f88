"""``POST /api/v1/imports``: import events from another calendar (an upload or a URL)."""
from __future__ import annotations

from typing import Annotated

from flask import request
from pydantic import Field, StringConstraints, ValidationError

from scheduler.api import api_user, bp, endpoint
from scheduler.api.endpoint import parse_body
from scheduler.api.errors import Invalid, UnsupportedMediaType, from_validation_error
from scheduler.api.schemas import Body, Out
from scheduler.auth.models import Role
from scheduler.auth.permissions import require_role, require_user
from scheduler.events.kinds import Kind
from scheduler.extensions import db
from scheduler.feeds.importer import (
    UPLOAD_OVERHEAD, ImportRejected, ImportSummary, current_limits, fetch_calendar, import_calendar, upload_name,
)
from scheduler.orgs.queries import get_org_by_slug


class ImportOptions(Body):
    """Where the events go and how they are imported."""

    org: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        description="Slug of the organization the events belong to."
    )
    kind: Kind = Field(Kind.SCIENCE_CARNIVAL, description="Kind of the events whose CATEGORIES name none of ours.")
    draft: bool = Field(False, description="Import new events as drafts instead of publishing them.")


class ImportFromUrl(ImportOptions):
    """Import the calendar at a public http(s) URL (no redirects are followed)."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ImportUpload(ImportOptions):
    """Import an uploaded iCalendar file (``multipart/form-data``)."""

    file: bytes = Field(description="The .ics file.")


class ImportResult(Out):
    """What the import did."""

    org: str
    source: str = Field(description="The file name or URL, kept on each imported event.")
    created: int
    updated: int
    unchanged: int
    total: int


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
    bp, "/imports", "POST", summary="Import events from another calendar", tag="imports", response=ImportResult,
    consumes={"application/json": ImportFromUrl, "multipart/form-data": ImportUpload},
)
def create_import() -> ImportResult:
    """Editors and managers of the organization: upload an .ics file (multipart field `file`) or send JSON with a `url`.
    Events keep their source UID, so importing again updates them instead of adding copies. All or nothing: a 422 lists
    every problem in `fields` (`file`, or `events.<UID>`) and nothing is saved."""
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
    try:
        if data is None:
            data = fetch_calendar(source, limits)
        summary: ImportSummary = import_calendar(data, org=org, source=source, kind=options.kind, draft=options.draft, user=user)
    except ImportRejected as exc:
        db.session.rollback()
        raise Invalid(exc.message, fields=exc.fields(), code="invalid_calendar") from None
    db.session.commit()
    return ImportResult(org=summary.org, source=summary.source, created=summary.created, updated=summary.updated,
                        unchanged=summary.unchanged, total=summary.total)
