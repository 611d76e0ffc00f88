"""Feeds from the database: one small read decides whether anything must be rebuilt.

Every change a feed shows raises the feeds' version in its own transaction
(:mod:`scheduler.feeds.versioning`). Per request: read the version; while it and the
clock leave the cached feed valid, answer from the cache (a 304, or the cached bytes).
Otherwise the rows are read again, but each event's VEVENT is re-rendered only if
that event changed.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.sql import Select

from scheduler.events.kinds import POPULARIZATION_KINDS, Kind
from scheduler.events.models import Event, FeedRemoval, Status
from scheduler.events.times import occurrence_starts
from scheduler.extensions import db
from scheduler.feeds.ical import CalendarMeta, EventView, Links, render_calendar, render_event
from scheduler.feeds.scopes import CANCELLED_VISIBLE, Scope
from scheduler.feeds.versioning import current_version
from scheduler.orgs.models import Organization
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.targets.progress import compute_progress, year_bounds
from scheduler.util.cache import LRU
from scheduler.util.time import UTC, now

_PROGRESS_KINDS = tuple(k.value for k in (*POPULARIZATION_KINDS, Kind.MATCHMAKING))
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)
_FAR = dt.datetime(9000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Feed:
    """A rendered feed and its validators."""

    body: bytes
    etag: str
    last_modified: dt.datetime

    def gzipped(self) -> bytes:
        """The body gzip-compressed, made once per feed (deterministic: no timestamp in it)."""
        packed = caches().gzipped.get(self.etag)
        if packed is None:
            packed = gzip.compress(self.body, compresslevel=6, mtime=0)
            caches().gzipped.put(self.etag, packed)
        return packed


@dataclass(frozen=True)
class ProgressNote:
    """The calendar description's progress text, and how long it stays true."""

    text: str
    changed_at: dt.datetime
    valid_until: dt.datetime
    version: int


@dataclass(frozen=True)
class CachedFeed:
    """A feed as built at ``version``, good until ``valid_until`` (time alone changes feeds too)."""

    feed: Feed
    version: int
    valid_until: dt.datetime


class FeedCaches:
    """Per-application caches: rendered VEVENTs, whole feeds, the progress note."""

    def __init__(self) -> None:
        self.events: LRU[bytes] = LRU(50_000)
        self.feeds: LRU[CachedFeed] = LRU(512)
        self.progress: LRU[ProgressNote] = LRU(16)
        #: Gzipped bodies by the feed's ETag.
        self.gzipped: LRU[bytes] = LRU(512)
        #: The feeds' version as last read, and when (time.monotonic()).
        self.version, self.version_read_at = 0, float("-inf")


def caches(app: Flask | None = None) -> FeedCaches:
    """The application's feed caches."""
    app = app or current_app
    return app.extensions.setdefault("feed_caches", FeedCaches())


def _max(*values: dt.datetime | None) -> dt.datetime:
    return max((v for v in values if v is not None), default=_EPOCH)


# --- the progress note of the calendar description -------------------------------------------


def progress_note(at: dt.datetime, matchmaking: bool, version: int) -> ProgressNote:
    """``科普活动 3/5 场(另有 2 场已排期)`` for the current year (and the fairs' figures)."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    year = at.astimezone(tz).year
    key = (year, matchmaking)
    cached = caches().progress.get(key)
    if cached is not None and cached.version == version and at < cached.valid_until:
        return cached
    targets = {p.target.key: p for p in compute_progress(year, None, at, tz)}
    lines = []
    if (p := targets.get("popularization_events")) is not None:
        lines.append(
            f"{year}年科普活动 {p.achieved}/{p.target.target_value} 场(另有 {p.scheduled} 场已排期)"
            f" · Science-popularization events {p.achieved}/{p.target.target_value} ({p.scheduled} more scheduled)"
        )
    if matchmaking:
        parts_zh, parts_en = [], []
        for key_, zh, en in (("matchmaking_fairs", "对接会", "fairs"), ("achievements_matched", "成功对接", "matched"),
                             ("achievements_commercialized", "落地转化", "commercialized")):
            if (p := targets.get(key_)) is not None:
                parts_zh.append(f"{zh} {p.achieved}/{p.target.target_value} {p.target.unit_zh}")
                parts_en.append(f"{en} {p.achieved}/{p.target.target_value}")
        if parts_zh:
            lines.append("“邑科汇”" + "、".join(parts_zh) + " · Matchmaking: " + ", ".join(parts_en))
    start, end = year_bounds(year, tz)
    changed_at, valid_until = _progress_moments(start, end, at)
    note = ProgressNote("\n".join(lines), changed_at, valid_until, version)
    caches().progress.put(key, note)
    return note


def _progress_moments(start: dt.datetime, end: dt.datetime, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When the counts last changed (an edit, or an occurrence starting) and when they next will."""
    rows = db.session.execute(
        select(Event.starts_at, Event.timezone, Event.rrule, Event.updated_at).where(
            Event.kind.in_(_PROGRESS_KINDS), Event.status != Status.DRAFT.value, Event.starts_at < end, Event.last_ends_at > start
        )
    ).all()
    changed, following = _EPOCH, end
    for starts_at, tz_name, rule, updated_at in rows:
        changed = max(changed, min(updated_at, at))
        for occurrence in occurrence_starts(starts_at, tz_name, rule):
            if occurrence <= at:
                changed = max(changed, occurrence)
            elif occurrence < following:
                following = occurrence
    return changed, following


# --- a feed's fingerprint and its rows --------------------------------------------------------


def _change_moments(scope: Scope, at: dt.datetime) -> dict[str, dt.datetime | None]:
    """When what the feed shows last changed, by source (for Last-Modified), in one round trip."""
    shown = scope.conditions(at)
    columns = {
        "events_changed": select(func.max(Event.updated_at)).where(*shown).scalar_subquery(),
        "orgs_changed": select(func.max(Organization.updated_at)).scalar_subquery(),
        # the cancelled event that will drop out next (the feed changes then by itself)
        "next_drop_out": select(func.min(Event.cancelled_at)).where(*shown, Event.status == Status.CANCELLED.value).scalar_subquery(),
    }
    if scope.past is not None:
        # the event that ages out next (the feed changes then by itself), and the last one that did
        columns["next_age_out"] = select(func.min(Event.last_ends_at)).where(*shown).scalar_subquery()
        aged = [scope.shown(at), *scope.static_conditions(), Event.last_ends_at < at - scope.past]
        columns["aged_out"] = select(func.max(Event.last_ends_at)).where(*aged).scalar_subquery()
    removals = scope.removal_conditions()
    if removals is not None:
        expired = [Event.status == Status.CANCELLED.value, Event.cancelled_at < at - CANCELLED_VISIBLE, *scope.static_conditions()]
        columns["removed"] = select(func.max(FeedRemoval.removed_at)).where(*removals).scalar_subquery()
        columns["expired_cancellation"] = select(func.max(Event.cancelled_at)).where(*expired).scalar_subquery()
    if scope.personal:
        mine = scope.mine()
        columns["registered"] = select(func.max(Registration.created_at)).where(mine).scalar_subquery()
        columns["seated"] = select(func.max(Registration.seated_at)).where(mine).scalar_subquery()
        columns["unregistered"] = select(func.max(Registration.cancelled_at)).where(mine).scalar_subquery()
    values = db.session.execute(select(*(c.label(name) for name, c in columns.items()))).one()
    return dict(values._mapping)


_COLUMNS = (
    Event.id, Event.uid, Event.kind, Event.title, Event.description, Event.venue, Event.address, Event.latitude,
    Event.longitude, Event.starts_at, Event.ends_at, Event.all_day, Event.timezone, Event.rrule, Event.exdates,
    Event.status, Event.details, Event.sequence, Event.cancel_reason, Event.created_at, Event.updated_at,
    Organization.name_zh, Organization.name_en,
)


_VIEW_FIELDS = (*(c.key for c in _COLUMNS[:-2]), "org_name_zh", "org_name_en")
#: What identifies one rendering of an event: any change to the event raises updated_at.
_KEY_COLUMNS = (Event.id, Event.updated_at, Event.sequence, Event.status, Event.all_day, Event.timezone,
                Organization.name_zh, Organization.name_en)


def _select(scope: Scope, at: dt.datetime, columns: tuple[Any, ...]) -> Select:
    stmt = select(*columns).join(Organization, Event.org_id == Organization.id).where(*scope.conditions(at))
    if scope.personal:
        waitlisted = select(Registration.event_id).where(scope.mine(), Registration.status == RegistrationStatus.WAITLISTED.value)
        stmt = stmt.add_columns(Event.id.in_(waitlisted).label("tentative"))
    return stmt.order_by(Event.starts_at, Event.id)


def _last_modified(moments: dict[str, dt.datetime | None], progress: ProgressNote | None,
                   past: dt.timedelta | None = None) -> dt.datetime:
    """The newest change to what the feed shows, removals and description included."""
    values = [v for name, v in moments.items() if name not in ("expired_cancellation", "next_drop_out", "next_age_out", "aged_out")]
    if moments.get("expired_cancellation") is not None:
        values.append(moments["expired_cancellation"] + CANCELLED_VISIBLE)  # when it dropped out of the feed
    if moments.get("aged_out") is not None and past is not None:
        values.append(moments["aged_out"] + past)  # when the last past event left the feed
    if progress is not None:
        values.append(progress.changed_at)
    return _max(*values).replace(microsecond=0)


def _version() -> int:
    """The feeds' version, read at most every ``FEED_VERSION_TTL`` seconds per process.

    Subscribers poll every few hours, so a feed up to a second old costs them nothing,
    and a busy process answers most requests (304s above all) without the database.
    """
    ttl = current_app.config["FEED_VERSION_TTL"]
    cache = caches()
    checked = time.monotonic()
    if ttl and checked - cache.version_read_at < ttl:
        return cache.version
    cache.version, cache.version_read_at = current_version(db.session), checked
    return cache.version


def feed_for(scope: Scope, alarms: tuple[dt.timedelta, ...] = ()) -> Feed:
    """The feed of ``scope``: from the cache while nothing changed, else rebuilt."""
    at = now()
    version = _version()
    key = (scope, alarms)
    cached = caches().feeds.get(key)
    if cached is not None and cached.version == version and at < cached.valid_until:
        return cached.feed
    progress = None
    if not scope.personal and scope.event_id is None:
        progress = progress_note(at, matchmaking=scope.kinds == frozenset({Kind.MATCHMAKING.value}), version=version)
    moments = _change_moments(scope, at)
    valid_until = min(
        progress.valid_until if progress else _FAR,
        moments["next_drop_out"] + CANCELLED_VISIBLE if moments["next_drop_out"] else _FAR,
        moments["next_age_out"] + scope.past if moments.get("next_age_out") and scope.past else _FAR,
    )
    feed = _build(scope, alarms, at, progress, _last_modified(moments, progress, scope.past))
    caches().feeds.put(key, CachedFeed(feed, version, valid_until))
    return feed


def _build(scope: Scope, alarms: tuple[dt.timedelta, ...], at: dt.datetime, progress: ProgressNote | None, last_modified: dt.datetime) -> Feed:
    """Render the feed, re-rendering only the events whose rendering is not kept already.

    A first pass reads only what identifies each rendering; the full rows are read for
    the events that changed (all of them on a cold start).
    """
    config = current_app.config
    base, organizer = config["BASE_URL"], config["ORGANIZER_EMAIL"]
    rendered = caches().events
    keys, tzids = [], set()
    for row in db.session.execute(_select(scope, at, _KEY_COLUMNS)):
        keys.append((row.id, row.updated_at, row.sequence, row.status, row.name_zh, row.name_en, alarms,
                     bool(getattr(row, "tentative", False)), base, organizer))
        if not row.all_day:
            tzids.add(row.timezone)
    chunks = {key[0]: chunk for key in keys if (chunk := rendered.get(key)) is not None}
    missing = [key for key in keys if key[0] not in chunks]
    if missing:
        stmt = _select(scope, at, _COLUMNS)
        if len(missing) < len(keys) // 2:
            stmt = stmt.where(Event.id.in_([key[0] for key in missing]))
        by_id = {key[0]: key for key in missing}
        for row in db.session.execute(stmt):
            key = by_id.get(row.id)
            if key is None:
                continue
            values = dict(zip(_VIEW_FIELDS, row[: len(_COLUMNS)], strict=True))
            view = EventView(**{**values, "exdates": tuple(values["exdates"] or ())}, tentative=key[7])
            chunks[row.id] = render_event(view, Links(f"{base}/events/{row.id}", organizer), alarms)
            rendered.put(key, chunks[row.id])
    description = "您报名的科普活动。Events you registered for." if scope.personal else (
        progress.text if progress and progress.text else "江门市科普与科技活动。Science & technology events in Jiangmen."
    )
    meta = CalendarMeta(f"{scope.name_zh} · {scope.name_en}", description, config["TIMEZONE"])
    body = render_calendar(meta, (chunks[key[0]] for key in keys), tzids)
    return Feed(body, hashlib.sha256(body).hexdigest()[:40], last_modified)
