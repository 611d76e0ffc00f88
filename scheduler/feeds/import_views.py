"""The organizers' import page: upload an .ics file into one of their organizations."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectChoice, SelectField
from wtforms.validators import DataRequired

from scheduler.auth.models import Role, User
from scheduler.auth.permissions import can
from scheduler.events.kinds import KINDS, Kind
from scheduler.extensions import csrf, db
from scheduler.feeds.import_scan import human_size
from scheduler.feeds.importer import (
    UPLOAD_OVERHEAD, ImportRejected, ImportSummary, current_limits, import_calendar, upload_name,
)
from scheduler.i18n import pick
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import subtree_ids

bp = Blueprint("organizer", __name__, url_prefix="/organizer")


class ImportForm(FlaskForm):
    """Which organization, which file, and how."""

    org = SelectField(lazy_gettext("Organization"), validators=[DataRequired()])
    file = FileField(lazy_gettext("Calendar file (.ics)"), validators=[FileRequired(lazy_gettext("Choose a file."))])
    kind = SelectField(lazy_gettext("Kind (when CATEGORIES name none)"), default=Kind.SCIENCE_CARNIVAL.value)
    draft = BooleanField(lazy_gettext("Import as drafts (not published)"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [SelectChoice(kind.value, pick(info.name_zh, info.name_en)) for kind, info in KINDS.items()]


def editable_orgs(user: User) -> list[Organization]:
    """The organizations where ``user`` may create events (editor or manager, inherited downwards)."""
    query = select(Organization).order_by(Organization.id)
    if not user.is_admin:
        held = {m.org_id for m in user.memberships if Role(m.role).rank >= Role.EDITOR.rank}
        query = query.where(Organization.id.in_(subtree_ids(held)))
    return list(db.session.scalars(query))


def _choices(orgs: list[Organization]) -> list[SelectChoice]:
    return [SelectChoice(org.slug, pick(org.name_zh, org.name_en)) for org in orgs]


def _page(form: ImportForm, *, summary: ImportSummary | None = None, problems: ImportRejected | None = None,
          error: str | None = None, status: int = 200) -> tuple[str, int]:
    limit = human_size(current_limits().max_bytes)
    page = render_template(
        "organizer_import.html", form=form, summary=summary, problems=problems, error=error, limit=limit,
    )
    return page, status


@bp.route("/import", methods=["GET", "POST"])
@csrf.exempt  # the CSRF check runs in the view, once the upload's size limit is raised
@login_required
def import_page() -> tuple[str, int]:
    """Upload a calendar file; see what was created and updated, or every problem found."""
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
        return _page(form, error=too_large, status=413)
    form.org.choices = _choices(orgs)
    if not form.validate_on_submit():
        return _page(form, status=422 if request.method == "POST" else 200)
    org = next(o for o in orgs if o.slug == form.org.data)
    if not can(user, org.id, Role.EDITOR):  # the choices say so already; checked again where it matters
        return _page(form, error=gettext("You may not import into this organization."), status=403)
    upload = form.file.data
    kind, draft = form.kind.data or Kind.SCIENCE_CARNIVAL, bool(form.draft.data)
    try:
        data = upload.read(limits.max_bytes + 1)
        summary = import_calendar(data, org=org, source=upload_name(upload.filename), kind=kind, draft=draft, user=user)
    except ImportRejected as exc:
        db.session.rollback()
        return _page(form, problems=exc, status=422)
    db.session.commit()
    return _page(form, summary=summary)
