"""The organizers' import pages: a calendar file or URL into one of their organizations, checked
first if they like (a dry run), and each import's page with its progress and report.

A small upload is imported while the browser waits; a URL or a larger file is imported in
the background (:mod:`scheduler.feeds.import_jobs`) and its page refreshes itself (no
script) until the report is there.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can
from scheduler.events.kinds import KINDS, Kind
from scheduler.extensions import csrf, db
from scheduler.feeds import import_jobs
from scheduler.feeds.import_scan import human_size
from scheduler.feeds.import_errors import ImportRejected
from scheduler.feeds.importer import UPLOAD_OVERHEAD, check_source_url, current_limits, is_url, upload_name
from scheduler.feeds.models import ImportJob, ImportStatus
from scheduler.i18n import pick
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import subtree_ids

bp = Blueprint("organizer", __name__, url_prefix="/organizer")
#: Seconds between the refreshes of a running import's page.
REFRESH_SECONDS = 2
RECENT = 10


class ImportForm(FlaskForm):
    """Which organization, which file or URL, and how."""

    org = SelectField(lazy_gettext("Organization"), validators=[DataRequired()])
    file = FileField(lazy_gettext("Calendar file (.ics)"))
    url = StringField(lazy_gettext("Or the calendar's address (https://…)"), validators=[Optional(), Length(max=2000)])
    kind = SelectField(lazy_gettext("Kind (when CATEGORIES name none)"), default=Kind.SCIENCE_CARNIVAL.value)
    draft = BooleanField(lazy_gettext("Import as drafts (not published)"))
    dry_run = BooleanField(lazy_gettext("Check only (a dry run: nothing is saved)"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [SelectChoice(kind.value, pick(info.name_zh, info.name_en)) for kind, info in KINDS.items()]

    def validate(self, extra_validators: Any = None) -> bool:
        """One source: a file or a URL (http or https)."""
        valid = super().validate(extra_validators)
        has_file = bool(self.file.data and getattr(self.file.data, "filename", ""))
        url = (self.url.data or "").strip()
        if has_file == bool(url):
            self.file.errors = [*self.file.errors, gettext("Choose a file, or give the calendar's address (not both).")]
            return False
        if url and not is_url(url):
            self.url.errors = [*self.url.errors, gettext("Give an address starting with http:// or https://.")]
            return False
        return valid


def editable_orgs(user: User) -> list[Organization]:
    """The organizations where ``user`` may create events (editor or manager, inherited downwards)."""
    query = select(Organization).order_by(Organization.id)
    if not user.is_admin:
        held = {m.org_id for m in user.memberships if Role(m.role).rank >= Role.EDITOR.rank}
        query = query.where(Organization.id.in_(subtree_ids(held)))
    return list(db.session.scalars(query))


def _choices(orgs: list[Organization]) -> list[SelectChoice]:
    return [SelectChoice(org.slug, pick(org.name_zh, org.name_en)) for org in orgs]


def _recent(orgs: list[Organization]) -> list[ImportJob]:
    ids = [org.id for org in orgs]
    return list(db.session.scalars(
        select(ImportJob).where(ImportJob.org_id.in_(ids)).order_by(ImportJob.id.desc()).limit(RECENT)
    )) if ids else []


def _page(form: ImportForm, orgs: list[Organization], *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    limit = human_size(current_limits().max_bytes)
    names = {org.id: pick(org.name_zh, org.name_en) for org in orgs}
    page = render_template("organizer_import.html", form=form, error=error, limit=limit, recent=_recent(orgs), names=names)
    return page, status


def _start(job: ImportJob) -> Response:
    """Run a small upload now, queue anything else; then the job's page."""
    job_id = job.id
    import_jobs.start(job)
    return redirect(url_for("organizer.import_job", job_id=job_id), 303)


@bp.route("/import", methods=["GET", "POST"])
@csrf.exempt  # the CSRF check runs in the view, once the upload's size limit is raised
@login_required
def import_page() -> tuple[str, int] | Response:
    """Upload a calendar file or give its URL; the import's page follows."""
    limits = current_limits()
    request.max_content_length = limits.max_bytes + UPLOAD_OVERHEAD
    user: User = current_user._get_current_object()  # type: ignore[attr-defined]
    orgs = editable_orgs(user)
    try:
        if request.method == "POST":
            csrf.protect()
        form = ImportForm()
    except RequestEntityTooLarge:
        form = ImportForm(formdata=None)
        form.org.choices = _choices(orgs)
        too_large = gettext("The file is too large: at most %(limit)s.", limit=human_size(limits.max_bytes))
        return _page(form, orgs, error=too_large, status=413)
    form.org.choices = _choices(orgs)
    if not form.validate_on_submit():
        return _page(form, orgs, status=422 if request.method == "POST" else 200)
    org = next(o for o in orgs if o.slug == form.org.data)
    if not can(user, org.id, Role.EDITOR):  # the choices say so already; checked again where it matters
        return _page(form, orgs, error=gettext("You may not import into this organization."), status=403)
    upload = form.file.data
    data = upload.read(limits.max_bytes + 1) if upload and upload.filename else None
    if data is not None and len(data) > limits.max_bytes:
        too_large = gettext("The file is too large: at most %(limit)s.", limit=human_size(limits.max_bytes))
        return _page(form, orgs, error=too_large, status=413)
    source = upload_name(upload.filename) if data is not None else (form.url.data or "").strip()
    if data is None:
        try:
            check_source_url(source)
        except ImportRejected as exc:
            return _page(form, orgs, error=exc.problems[0].localized(), status=422)
    job = import_jobs.queue_import(org=org, user=user, source=source, data=data, kind=form.kind.data or Kind.SCIENCE_CARNIVAL,
                                   draft=bool(form.draft.data), dry_run=bool(form.dry_run.data))
    return _start(job)


def _job_for(user: User, job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None or not can(user, job.org_id, Role.EDITOR):
        abort(404)  # another organization's import is not there for this user
    return job


@bp.get("/imports/<int:job_id>")
@login_required
def import_job(job_id: int) -> str:
    """An import's progress (the page refreshes itself while it runs), then its report."""
    job = _job_for(current_user, job_id)  # type: ignore[arg-type]
    running = job.status in (ImportStatus.QUEUED.value, ImportStatus.RUNNING.value)
    org = db.session.get(Organization, job.org_id)
    return render_template(
        "organizer_import_job.html", job=job, running=running, refresh=REFRESH_SECONDS if running else None,
        summary=None if running else import_jobs.summary_of(job), org_name=pick(org.name_zh, org.name_en) if org else "",
        can_import=job.dry_run and job.status == ImportStatus.DONE.value and (job.data is not None or is_url(job.source)),
    )


@bp.post("/imports/<int:job_id>/import")
@login_required
def import_checked(job_id: int) -> Response:
    """Import what a dry run checked, with the same options."""
    job = _job_for(current_user, job_id)  # type: ignore[arg-type]
    if not (job.dry_run and job.status == ImportStatus.DONE.value and (job.data is not None or is_url(job.source))):
        abort(409)
    return _start(import_jobs.again(job, current_user._get_current_object()))  # type: ignore[attr-defined]
