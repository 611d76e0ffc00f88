"""Importing events from another calendar (an .ics file or URL) into one organization.

Three steps, so that nothing is written unless everything is right:

1. :func:`read_calendar`: limits checked before parsing (size, nesting, number of
   events), then every event read into a validated :class:`ImportItem`;
2. :func:`plan_import`: each item matched by UID: new, changed, or unchanged; a UID of
   another organization, or a change the event no longer allows, is a problem;
3. :func:`apply_import`: the plan carried out with the event operations inside a
   savepoint (flush, never commit): the source UID is kept, so importing again updates
   instead of duplicating, and SEQUENCE rises through the operations.

Any problem raises :class:`ImportRejected` with the whole list. Events that left the
source calendar are not deleted here.
"""
from __future__ import annotations

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
from scheduler.feeds.import_errors import ImportRejected, Problem
from scheduler.feeds.import_parse import ImportItem, parse_calendar
from scheduler.feeds.import_scan import ImportLimits, human_size, scan_calendar
from scheduler.orgs.models import Organization
from scheduler.util.http import FetchError, safe_get

__all__ = [
    "UPLOAD_OVERHEAD", "ImportItem", "ImportLimits", "ImportPlan", "ImportRejected", "ImportSummary", "Problem",
    "apply_import", "fetch_calendar", "import_calendar", "load_source", "plan_import", "read_calendar", "upload_name",
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


def read_calendar(data: bytes, *, default_kind: Kind | str = Kind.SCIENCE_CARNIVAL, limits: ImportLimits | None = None,
                  default_zone: str | None = None) -> list[ImportItem]:
    """Check and read the iCalendar ``data`` into import items; raise :class:`ImportRejected`."""
    limits = limits or current_limits()
    scanned = scan_calendar(data, limits)
    zone = default_zone or current_app.config["TIMEZONE"]
    return parse_calendar(scanned, default_kind=Kind(default_kind), default_zone=zone, max_seconds=limits.max_seconds)


def upload_name(filename: str | None) -> str:
    """The name an uploaded file is recorded under: its base name, never a path."""
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:_SOURCE_SIZE] or "upload.ics"


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL rather than a file name."""
    return source.lower().startswith(("http://", "https://"))


def fetch_calendar(url: str, limits: ImportLimits | None = None) -> bytes:
    """Fetch a calendar from an outside URL (public addresses only, no redirects, size-capped)."""
    limits = limits or current_limits()
    try:
        return safe_get(url, accept="text/calendar, */*;q=0.5", max_bytes=limits.max_bytes).content
    except FetchError as exc:
        raise ImportRejected([Problem(f"{url} could not be fetched: {exc}", field="url")]) from None


def load_source(source: str, limits: ImportLimits | None = None) -> bytes:
    """The bytes of a calendar file or URL, never more than the size cap."""
    limits = limits or current_limits()
    if is_url(source):
        return fetch_calendar(source, limits)
    path = Path(source)
    try:
        if path.stat().st_size > limits.max_bytes:
            raise ImportRejected([Problem(f"The file is too large: at most {human_size(limits.max_bytes)} are imported.")])
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ImportRejected([Problem(f"{source} cannot be read: {exc.strerror or exc}")]) from None


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


@dataclass(frozen=True)
class ImportSummary:
    """What an import did."""

    org: str
    source: str
    created: int
    updated: int
    unchanged: int

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
    return changes


def _missing_details(kind: Kind) -> str | None:
    """Why a new event of ``kind`` cannot come from a calendar file (it needs details), or ``None``."""
    try:
        validate_details(kind, {})
    except APIError as exc:
        names = ", ".join(name.removeprefix("details.") for name in exc.fields)
        return f"The kind {kind.value} ({KINDS[kind].name_zh}) needs details a calendar file does not carry ({names})"
    return None


def _plan_existing(event: Event, item: ImportItem, draft: bool) -> tuple[Step | None, str | None]:
    changes = _changes(event, item)
    status = Status(event.status)
    if status == Status.CANCELLED:
        if item.cancelled:
            return Step(item, "unchanged", event), None
        return None, "This event is cancelled here and cannot be brought back by an import."
    if status == Status.COMPLETED:
        if changes or item.cancelled:
            return None, "This event has taken place (completed) and can no longer be changed."
        return Step(item, "unchanged", event), None
    publish = status == Status.DRAFT and not draft and not item.cancelled
    if not changes and not publish and not item.cancelled:
        return Step(item, "unchanged", event), None
    return Step(item, "update", event, changes, publish=publish, cancel=item.cancelled), None


def plan_import(items: list[ImportItem], *, org: Organization, source: str, draft: bool = False) -> ImportPlan:
    """Match every item with the organization's events; raise :class:`ImportRejected` listing what cannot be done."""
    existing = _existing([item.uid for item in items])
    steps: list[Step] = []
    problems: list[Problem] = []
    for item in items:
        event = existing.get(item.uid)
        problem: str | None = None
        if event is None:
            problem = _missing_details(item.kind)
            if problem:
                problem += (
                    ": its CATEGORIES name this kind; create the event in the scheduler, or remove the category."
                    if item.kind_from_categories else ": import it as another kind."
                )
            step = Step(item, "create", publish=not draft and not item.cancelled, cancel=item.cancelled)
        elif event.org_id != org.id:
            problem, step = "This UID belongs to an event of another organization.", None
        else:
            step, problem = _plan_existing(event, item, draft)
        if problem or step is None:
            problems.append(Problem(problem or "Cannot be imported.", item.uid, item.title, item.line))
        else:
            steps.append(step)
    if problems:
        raise ImportRejected(problems)
    return ImportPlan(org, source[:_SOURCE_SIZE], tuple(steps))


def _carry_out(step: Step, plan: ImportPlan, user: User | None) -> None:
    item = step.item
    event = step.event
    if step.action == "create":
        event = operations.create_event(
            org=plan.org, kind=item.kind, title=item.title, starts_at=item.start, ends_at=item.end, all_day=item.all_day,
            timezone=item.timezone, rrule=item.rrule, exdates=list(item.exdates), uid=item.uid, created_by=user,
            description=item.description, venue=item.venue, latitude=item.latitude, longitude=item.longitude,
            import_source=plan.source,
        )
    elif step.changes:
        assert event is not None
        operations.update_event(event, {**step.changes, "import_source": plan.source})
    assert event is not None
    if step.publish:
        operations.publish_event(event)
    if step.cancel:
        operations.cancel_event(event, CANCEL_REASON)


def apply_import(plan: ImportPlan, *, user: User | None = None, on_step: Callable[[Step], None] | None = None) -> ImportSummary:
    """Carry out ``plan`` with the event operations (flush, never commit); all or nothing.

    ``on_step`` is called after each item (a progress bar). A refusal by an operation
    rolls back every change of the import and raises :class:`ImportRejected`.
    """
    counts = {"create": 0, "update": 0, "unchanged": 0}
    savepoint = db.session.begin_nested()
    try:
        for step in plan.steps:
            try:
                _carry_out(step, plan, user)
            except APIError as exc:
                details = "; ".join(f"{name}: {message}" for name, message in exc.fields.items()) or exc.message
                raise ImportRejected([Problem(details, step.item.uid, step.item.title, step.item.line)]) from None
            counts[step.action] += 1
            if on_step is not None:
                on_step(step)
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return ImportSummary(plan.org.slug, plan.source, counts["create"], counts["update"], counts["unchanged"])


def import_calendar(data: bytes, *, org: Organization, source: str, kind: Kind | str = Kind.SCIENCE_CARNIVAL,
                    draft: bool = False, user: User | None = None) -> ImportSummary:
    """Read, plan and apply in one call (the web form and the API use this)."""
    items = read_calendar(data, default_kind=kind)
    return apply_import(plan_import(items, org=org, source=source, draft=draft), user=user)
