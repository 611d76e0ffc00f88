"""The organizers' dashboard: the year's targets with progress bars and a chart of events per month.

``GET /organizer`` (login required; on the ``pages`` blueprint, thin: :func:`compute_progress`
and :func:`monthly_counts` do the work, :mod:`scheduler.pages.charts` draws the chart).

* ``?year=YYYY``: the year (default: this year in the app's ``TIMEZONE``).
* ``?org=slug``: whose view. An administrator or a member of the top organization (the bureau)
  sees the city-wide targets by default (``?org=city``); anyone else sees their organization's
  view — the city's targets counting only that organization's events (and those of the
  organizations below it), or the organization's own targets. A user with several readable
  organizations gets a selector, limited to the organizations they may read
  (:func:`readable_org_ids`); an unknown slug is a 404, one they may not read a 403.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from babel.dates import get_month_names
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.wrappers import Response

from scheduler.api.errors import Conflict, Invalid
from scheduler.auth.models import User
from scheduler.auth.permissions import readable_orgs
from scheduler.extensions import db
from scheduler.i18n import pick
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import get_org_by_slug
from scheduler.pages.charts import Month, month_chart
from scheduler.pages.views import bp
from scheduler.targets.models import Metric, Target
from scheduler.targets.operations import MAX_MANUAL, may_record, record_manual_progress
from scheduler.targets.progress import Progress, compute_progress, monthly_counts
from scheduler.util.time import now

#: The value of ``?org=`` that asks for the city-wide view.
CITY = "city"
#: The target the chart follows (else the first event-count target with kinds).
CHART_TARGET = "popularization_events"


@dataclass
class TargetView:
    """One target as the dashboard shows it."""

    progress: Progress
    label: str
    unit: str
    counts_events: bool
    #: A hand-recorded city total, not split by organization (shown as such in an organization's view).
    not_split: bool
    #: Recorded by hand, and the user may record it (a form on the dashboard).
    can_record: bool = False


def _year(today: dt.date) -> int:
    text = request.args.get("year", "").strip()
    if not text:
        return today.year
    if not text.isdigit() or not 2000 <= int(text) <= 2100:
        abort(400)
    return int(text)


def _sees_city(user: User) -> bool:
    """Administrators and members of a top organization see the city-wide targets."""
    return user.is_admin or any(m.org.parent_id is None for m in user.memberships)



def _chosen(user: User, sees_city: bool, orgs: list[Organization]) -> tuple[bool, Organization | None]:
    """(whether a view is chosen, the organization or ``None`` for the city) from ``?org=``; 403/404 otherwise."""
    slug = request.args.get("org", "").strip()
    if not slug:
        if sees_city:
            return True, None
        own = sorted((m.org for m in user.memberships), key=lambda o: o.id)
        return (True, own[0]) if own else (False, None)
    if slug == CITY:
        if not sees_city:
            abort(403)
        return True, None
    org = get_org_by_slug(slug)
    if org is None:
        abort(404)
    if org.id not in {o.id for o in orgs}:
        abort(403)
    return True, org


def _target_views(progress: list[Progress], user: User) -> list[TargetView]:
    return [
        TargetView(
            progress=p, label=pick(p.target.label_zh, p.target.label_en), unit=pick(p.target.unit_zh, p.target.unit_en),
            counts_events=p.target.metric == Metric.COUNT_EVENTS,
            not_split=bool(p.counted_for) and p.target.metric == Metric.MANUAL,
            can_record=p.target.metric == Metric.MANUAL and not p.counted_for and may_record(user, p.target),
        )
        for p in progress
    ]


def _chart_target(progress: list[Progress]) -> Progress | None:
    counting = [p for p in progress if p.target.metric == Metric.COUNT_EVENTS and p.target.kinds]
    return next((p for p in counting if p.target.key == CHART_TARGET), counting[0] if counting else None)


def _chart(progress: Progress, year: int, org: Organization | None, at: dt.datetime, tz: ZoneInfo) -> tuple[Markup, list[Month]]:
    counts = monthly_counts(list(progress.target.kinds), year, org, at, tz)
    locale = get_locale()
    names = get_month_names("abbreviated", locale=locale)
    wide = get_month_names("wide", locale=locale)
    months = [
        Month(held, scheduled, names[i + 1],
              gettext("%(month)s: %(held)s held, %(scheduled)s scheduled", month=wide[i + 1], held=held, scheduled=scheduled))
        for i, (held, scheduled) in enumerate(counts)
    ]
    label = pick(progress.target.label_zh, progress.target.label_en)
    title = gettext("%(target)s per month, %(year)s", target=label, year=year)
    desc = gettext(
        "Bars: events held each month, with scheduled events stacked on them in a lighter colour. Solid line: "
        "held and scheduled events added up through the year. Dashed line: the steady pace that reaches the "
        "target of %(target)s by the end of the year. So far %(achieved)s held and %(scheduled)s scheduled.",
        target=progress.target.target_value, achieved=progress.achieved, scheduled=progress.scheduled,
    )
    svg = month_chart(months, progress.target.target_value, title=title, desc=desc)
    return Markup(svg), months  # noqa: S704 - built by month_chart, which escapes every text it is given


@bp.get("/organizer")
@login_required
def organizer_dashboard() -> str:
    """The year's targets for the organizations the user may read, with progress bars and the month chart."""
    user: User = current_user._get_current_object()  # type: ignore[attr-defined]
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    at = now()
    year = _year(at.astimezone(tz).date())
    sees_city = _sees_city(user)
    orgs = readable_orgs(user)
    chosen, org = _chosen(user, sees_city, orgs)
    progress = compute_progress(year, org, at, tz) if chosen else []
    chart_progress = _chart_target(progress)
    chart, months = _chart(chart_progress, year, org, at, tz) if chart_progress else (None, [])
    choices = ([(CITY, gettext("The whole city"))] if sees_city else []) + [(o.slug, pick(o.name_zh, o.name_en)) for o in orgs]
    return render_template(
        "organizer_dashboard.html",
        year=year, this_year=at.astimezone(tz).year, org=org, chosen=chosen,
        selected=org.slug if org else CITY, choices=choices if len(choices) > 1 else [],
        targets=_target_views(progress, user), chart=chart, chart_target=chart_progress, months=months,
        lang=request.args.get("lang"),
    )


@bp.post("/organizer/targets/<int:target_id>/progress")
@login_required
def organizer_dashboard_progress(target_id: int) -> Response:
    """Record what a target counted by hand has achieved (managers: see :func:`may_record`)."""
    user: User = current_user._get_current_object()  # type: ignore[attr-defined]
    target = db.session.get(Target, target_id)
    if target is None:
        abort(404)
    if not may_record(user, target):
        abort(403)
    text = request.form.get("achieved", "").strip()
    try:
        record_manual_progress(target, int(text) if text.isdigit() else -1)
    except Invalid:
        db.session.rollback()
        flash(gettext("Give a whole number from 0 to %(most)s.", most=MAX_MANUAL), "error")
    except Conflict:
        db.session.rollback()
        flash(gettext("This target counts events and their outcomes; it is not recorded by hand."), "error")
    else:
        db.session.commit()
        flash(gettext("Recorded: %(target)s, %(achieved)s so far.", target=pick(target.label_zh, target.label_en),
                      achieved=target.manual_value))
    back = {key: request.form[key] for key in ("year", "org", "lang") if request.form.get(key)}
    return redirect(url_for("pages.organizer_dashboard", **back), code=303)
