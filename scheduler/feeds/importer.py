"""Importing events from another calendar (an .ics file or URL) into one organization.

Three steps; the good events are imported even when others are not:

1. :func:`read_events`: limits checked before parsing (size, nesting, number of events),
   then every event read into a validated :class:`ImportItem`, or a :class:`Problem`;
2. :func:`plan_import`: each item matched by UID: new, changed, or unchanged; a UID of
   another organization, or a change the event no longer allows, is a problem;
3. :func:`apply_import`: the plan carried out with the event operations, each event in its
   own savepoint (flush, never commit): the source UID is kept, so importing again updates
   instead of duplicating, and SEQUENCE rises through the operations.

A file that cannot be read at all, or whose every event is refused, raises
:class:`ImportRejected` (nothing is written); so does any problem with ``atomic``. A dry run
stops after the plan. Events that left the source calendar are not deleted here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from scheduler.api.errors import APIError
from scheduler.auth.models import User
from scheduler.events import operations
from scheduler.events.kinds import KINDS, Kind, validate_details
from scheduler.events.models import Event, Status
from scheduler.extensions import db
from scheduler.feeds.import_errors import N_, ImportRejected, Problem
from scheduler.feeds.import_parse import ImportItem, Reading, parse_calendar
from scheduler.feeds.import_scan import ImportLimits, human_size, scan_calendar
from scheduler.orgs.models import Organization
from scheduler.util.http import FetchError, check_url, configured_allowlist, safe_get

__all__ = [
    "UPLOAD_OVERHEAD", "ImportItem", "ImportLimits", "ImportPlan", "ImportRejected", "ImportSummary", "Problem",
    "PreparedImport", "Reading", "apply_import", "fetch_calendar", "import_calendar", "load_source", "plan_import", "prepare_import",
    "read_calendar", "read_events", "upload_name",
]

#: Shown to participants as the reason of an event cancelled in its source calendar.
CANCEL_REASON = "源日历中已取消 Cancelled in the source calendar"
#: Room for the form fields and multipart framing around an uploaded file of the maximum size.
UPLOAD_OVERHEAD = 64 * 1024
_SOURCE_SIZE = 500
_IN_CHUNK = 500


def current_limits() -> ImportLimits:
    """The limits of the running application."""
    return ImportLimits.from_config(current_app.config)


def read_events(data: bytes, *, default_kind: Kind | str = Kind.SCIENCE_CARNIVAL, limits: ImportLimits | None = None,
                default_zone: str | None = None) -> Reading:
    """Check and read the iCalendar ``data``: the events to import and the problems of the others.
    Raises :class:`ImportRejected` when the file cannot be read at all."""
    limits = limits or current_limits()
    scanned = scan_calendar(data, limits)
    zone = default_zone or current_app.config["TIMEZONE"]
    return parse_calendar(scanned, default_kind=Kind(default_kind), default_zone=zone, max_seconds=limits.max_seconds,
                          open_rule_days=limits.open_rule_days)


def read_calendar(data: bytes, *, default_kind: Kind | str = Kind.SCIENCE_CARNIVAL, limits: ImportLimits | None = None,
                  default_zone: str | None = None) -> list[ImportItem]:
    """Every event of ``data`` as an import item; :class:`ImportRejected` if any event has a problem."""
    reading = read_events(data, default_kind=default_kind, limits=limits, default_zone=default_zone)
    if reading.problems:
        raise ImportRejected(reading.problems)
    return reading.items


def upload_name(filename: str | None) -> str:
    """The name an uploaded file is recorded under: its base name, never a path."""
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:_SOURCE_SIZE] or "upload.ics"


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL rather than a file name."""
    return source.lower().startswith(("http://", "https://"))


def check_source_url(url: str) -> None:
    """Refuse at once (before any job is queued) a URL that would never be fetched: not http(s), or an
    address that is not public (unless allow-listed). The fetch checks again (the name may resolve anew)."""
    try:
        check_url(url, configured_allowlist())
    except FetchError as exc:
        raise ImportRejected([Problem(N_("%(url)s could not be fetched: %(error)s"), field="url",
                                      params={"url": url, "error": str(exc)})]) from None


def fetch_calendar(url: str, limits: ImportLimits | None = None) -> bytes:
    """Fetch a calendar from an outside URL (public addresses only, no redirects, size-capped)."""
    limits = limits or current_limits()
    try:
        return safe_get(url, accept="text/calendar, */*;q=0.5", max_bytes=limits.max_bytes).content
    except FetchError as exc:
        raise ImportRejected([Problem(N_("%(url)s could not be fetched: %(error)s"), field="url",
                                      params={"url": url, "error": str(exc)})]) from None


def load_source(source: str, limits: ImportLimits | None = None) -> bytes:
    """The bytes of a calendar file or URL, never more than the size cap."""
    limits = limits or current_limits()
    if is_url(source):
        return fetch_calendar(source, limits)
    path = Path(source)
    try:
        if path.stat().st_size > limits.max_bytes:
            raise ImportRejected([Problem(N_("The file is too large: at most %(limit)s are imported."),
                                          params={"limit": human_size(limits.max_bytes)})])
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ImportRejected([Problem(N_("%(source)s cannot be read: %(error)s"),
                                      params={"source": source, "error": exc.strerror or str(exc)})]) from None


@dataclass(frozen=True)
class Step:
    """What importing one item does."""

    item: ImportItem
    #: ``create``, ``update`` or ``unchanged``.
    action: str
    event: Event | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    publish: bool = False
    cancel: bool = False


@dataclass(frozen=True)
class ImportPlan:
    """Every item's step, checked against the database; carried out by :func:`apply_import`."""

    org: Organization
    source: str
    steps: tuple[Step, ...]
    #: The items that cannot be imported, each with why.
    problems: tuple[Problem, ...] = ()

    def counts(self) -> dict[str, int]:
        """Steps by action (what a dry run reports)."""
        counts = dict.fromkeys(("create", "update", "unchanged"), 0)
        for step in self.steps:
            counts[step.action] += 1
        return counts


@dataclass(frozen=True)
class ImportSummary:
    """What an import did."""

    org: str
    source: str
    created: int
    updated: int
    unchanged: int
    #: Events left out, each with why (the others were imported).
    problems: tuple[Problem, ...] = ()
    #: How some events were read (an open-ended series' horizon, a zone matched by its offsets).
    notes: tuple[Problem, ...] = ()
    #: Nothing was saved: the counts say what importing would do.
    dry_run: bool = False

    @property
    def rejected(self) -> int:
        """Events of the file not imported."""
        return len({(p.uid, p.line) for p in self.problems if p.uid or p.line})

    @property
    def total(self) -> int:
        """Events in the imported calendar."""
        return self.created + self.updated + self.unchanged


def _existing(uids: list[str]) -> dict[str, Event]:
    found: dict[str, Event] = {}
    for i in range(0, len(uids), _IN_CHUNK):
        found.update((e.uid, e) for e in db.session.scalars(select(Event).where(Event.uid.in_(uids[i : i + _IN_CHUNK]))))
    return found


def _changes(event: Event, item: ImportItem) -> dict[str, Any]:
    """The fields the item changes, in :func:`operations.update_event`'s terms."""
    times = item.times
    changes: dict[str, Any] = {}
    if (event.starts_at, event.ends_at, event.all_day, event.timezone, event.rrule) != (
        times.starts_at, times.ends_at, item.all_day, item.timezone, times.rrule
    ):
        changes.update(starts_at=item.start, ends_at=item.end, all_day=item.all_day, timezone=item.timezone, rrule=item.rrule)
    if list(item.exdates) != sorted(event.exdates or []):
        changes["exdates"] = list(item.exdates)
    for name in ("title", "description", "venue", "latitude", "longitude"):
        if getattr(event, name) != getattr(item, name):
            changes[name] = getattr(item, name)
    if item.details is not None and item.details != event.details:
        changes["details"] = item.details
    return changes


def _details_problem(item: ImportItem) -> Problem | None:
    """Why a new event of the item's kind cannot be made from the file (details missing or wrong), or ``None``."""
    try:
        validate_details(item.kind, item.details or {})
    except APIError as exc:
        names = ", ".join(name.removeprefix("details.") for name in exc.fields)
        info = KINDS[item.kind]
        params = {"kind": item.kind.value, "name": f"{info.name_zh} {info.name_en}", "names": names}
        if item.details is not None:
            message = N_("The details of the kind %(kind)s (%(name)s) in the file are not valid (%(names)s).")
        elif item.kind_from_categories:
            message = N_("The kind %(kind)s (%(name)s) named by CATEGORIES needs details a calendar file does not carry "
                         "(%(names)s): create the event in the scheduler, or remove the category.")
        else:
            message = N_("The kind %(kind)s (%(name)s) needs details a calendar file does not carry (%(names)s): "
                         "import it as another kind.")
        return Problem(message, item.uid, item.title, item.line, params=params)
    return None


def _plan_existing(event: Event, item: ImportItem, draft: bool) -> tuple[Step | None, str | None]:
    changes = _changes(event, item)
    status = Status(event.status)
    if status == Status.CANCELLED:
        if item.cancelled:
            return Step(item, "unchanged", event), None
        return None, N_("This event is cancelled here and cannot be brought back by an import.")
    if status == Status.COMPLETED:
        if changes or item.cancelled:
            return None, N_("This event has taken place (completed) and can no longer be changed.")
        return Step(item, "unchanged", event), None
    publish = status == Status.DRAFT and not draft and not item.cancelled
    if not changes and not publish and not item.cancelled:
        return Step(item, "unchanged", event), None
    return Step(item, "update", event, changes, publish=publish, cancel=item.cancelled), None


def plan_import(items: list[ImportItem], *, org: Organization, source: str, draft: bool = False) -> ImportPlan:
    """Match every item with the organization's events; what cannot be done is in :attr:`ImportPlan.problems`."""
    existing = _existing([item.uid for item in items])
    steps: list[Step] = []
    problems: list[Problem] = []
    planned: set[str] = set()
    for item in items:
        event = existing.get(item.uid)
        problem: Problem | None = None
        step: Step | None = None
        if item.series_uid is not None and item.series_uid not in planned:
            problem = Problem(N_("Its series was not imported (see the problems of that event)."), item.uid, item.title, item.line)
        elif event is None:
            problem = _details_problem(item)
            step = Step(item, "create", publish=not draft and not item.cancelled, cancel=item.cancelled)
        elif event.org_id != org.id:
            problem = Problem(N_("This UID belongs to an event of another organization."), item.uid, item.title, item.line)
        else:
            step, refusal = _plan_existing(event, item, draft)
            if refusal:
                problem = Problem(refusal, item.uid, item.title, item.line)
        if problem is not None or step is None:
            problems.append(problem or Problem(N_("Cannot be imported."), item.uid, item.title, item.line))
        else:
            steps.append(step)
            planned.add(item.uid)
    return ImportPlan(org, source[:_SOURCE_SIZE], tuple(steps), tuple(problems))


def _carry_out(step: Step, plan: ImportPlan, user: User | None) -> None:
    item = step.item
    event = step.event
    if step.action == "create":
        event = operations.create_event(
            org=plan.org, kind=item.kind, title=item.title, starts_at=item.start, ends_at=item.end, all_day=item.all_day,
            timezone=item.timezone, rrule=item.rrule, exdates=list(item.exdates), uid=item.uid, created_by=user,
            description=item.description, venue=item.venue, latitude=item.latitude, longitude=item.longitude,
            import_source=plan.source, details=item.details,
        )
    elif step.changes:
        assert event is not None
        operations.update_event(event, {**step.changes, "import_source": plan.source})
    assert event is not None
    if item.series_uid is not None:
        series = db.session.scalar(select(Event).where(Event.uid == item.series_uid, Event.org_id == plan.org.id))
        event.series_id = series.id if series is not None else None
        event.recurrence_id = item.recurrence_id
    if step.publish:
        operations.publish_event(event)
    if step.cancel:
        operations.cancel_event(event, CANCEL_REASON)


def _refusal(step: Step, exc: APIError) -> Problem:
    item = step.item
    details = "; ".join(f"{name}: {message}" for name, message in exc.fields.items()) or exc.message
    return Problem(N_("Refused when saved: %(problem)s"), item.uid, item.title, item.line, params={"problem": details})


def apply_import(plan: ImportPlan, *, user: User | None = None, on_step: Callable[[Step], None] | None = None,
                 atomic: bool = False) -> ImportSummary:
    """Carry out ``plan`` with the event operations (flush, never commit), each event in its own savepoint.

    ``on_step`` is called after each item (a progress bar, a background job's progress). An
    event an operation refuses is left out and reported; with ``atomic`` the refusal rolls
    back every change of the import and raises :class:`ImportRejected`.
    """
    counts = {"create": 0, "update": 0, "unchanged": 0}
    problems: list[Problem] = []
    failed: set[str] = set()
    outer = db.session.begin_nested() if atomic else None
    try:
        for step in plan.steps:
            if step.item.series_uid in failed:
                problems.append(Problem(N_("Its series was not imported (see the problems of that event)."),
                                        step.item.uid, step.item.title, step.item.line))
            else:
                savepoint = db.session.begin_nested()
                try:
                    _carry_out(step, plan, user)
                except APIError as exc:
                    savepoint.rollback()
                    if atomic:
                        raise ImportRejected([_refusal(step, exc)]) from None
                    problems.append(_refusal(step, exc))
                    failed.add(step.item.uid)
                else:
                    savepoint.commit()
                    counts[step.action] += 1
            if on_step is not None:
                on_step(step)
    except BaseException:
        if outer is not None:
            outer.rollback()
        raise
    if outer is not None:
        outer.commit()
    return ImportSummary(plan.org.slug, plan.source, counts["create"], counts["update"], counts["unchanged"],
                         (*plan.problems, *problems))


@dataclass(frozen=True)
class PreparedImport:
    """A calendar read and planned, ready to apply (or to report, for a dry run)."""

    reading: Reading
    plan: ImportPlan

    def checked(self) -> ImportSummary:
        """What applying would do (a dry run's report)."""
        counts = self.plan.counts()
        return ImportSummary(self.plan.org.slug, self.plan.source, counts["create"], counts["update"], counts["unchanged"],
                             (*self.reading.problems, *self.plan.problems), tuple(self.reading.notes), dry_run=True)

    def apply(self, *, user: User | None = None, on_step: Callable[[Step], None] | None = None,
              atomic: bool = False) -> ImportSummary:
        """Carry out the plan (:func:`apply_import`); the report includes what reading left out."""
        summary = apply_import(self.plan, user=user, on_step=on_step, atomic=atomic)
        return dataclasses.replace(summary, problems=(*self.reading.problems, *summary.problems),
                                   notes=tuple(self.reading.notes))


def prepare_import(data: bytes, *, org: Organization, source: str, kind: Kind | str = Kind.SCIENCE_CARNIVAL,
                   draft: bool = False, atomic: bool = False) -> PreparedImport:
    """Read and plan ``data``. Raises :class:`ImportRejected` (nothing written) when the file cannot be
    read, when no event of it can be imported, or, with ``atomic``, when any event cannot."""
    reading = read_events(data, default_kind=kind)
    plan = plan_import(reading.items, org=org, source=source, draft=draft)
    problems = [*reading.problems, *plan.problems]
    if problems and (atomic or not plan.steps):
        raise ImportRejected(problems)
    return PreparedImport(reading, plan)


def import_calendar(data: bytes, *, org: Organization, source: str, kind: Kind | str = Kind.SCIENCE_CARNIVAL,
                    draft: bool = False, user: User | None = None, dry_run: bool = False, atomic: bool = False,
                    on_step: Callable[[Step], None] | None = None) -> ImportSummary:
    """Read, plan and apply (or, for a dry run, only read and plan) in one call; raises as :func:`prepare_import`."""
    prepared = prepare_import(data, org=org, source=source, kind=kind, draft=draft, atomic=atomic)
    return prepared.checked() if dry_run else prepared.apply(user=user, on_step=on_step, atomic=atomic)
