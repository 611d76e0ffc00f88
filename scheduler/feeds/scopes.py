"""Which events a feed shows: every feed is a scope (kinds, organizations, one person)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, and_, func, or_, select

from scheduler.events.kinds import KINDS, Kind
from scheduler.events.models import Event, FeedRemoval, Status
from scheduler.extensions import db
from scheduler.orgs.counties import COUNTIES
from scheduler.orgs.models import Organization
from scheduler.orgs.queries import county_org_ids, get_org_by_slug, subtree_ids
from scheduler.registrations.models import Registration, RegistrationStatus
from scheduler.util.time import now

#: Cancelled events stay in feeds this long after the cancellation, so clients see it.
CANCELLED_VISIBLE = dt.timedelta(days=30)


class UnknownFilter(ValueError):
    """A filter names a kind or organization that does not exist."""


@dataclass(frozen=True)
class Scope:
    """A feed's selection of events and its names."""

    key: str
    name_zh: str
    name_en: str
    kinds: frozenset[str] | None = None
    org_ids: frozenset[int] | None = None
    #: A verified person's calendar: the keyed hash of their number.
    phone_hash: str | None = None
    #: A registration's own calendar.
    registration_id: int | None = None
    event_id: int | None = None
    #: Public feeds: events whose last occurrence ended longer ago than this leave the feed
    #: (``FEED_PAST_DAYS``); ``None`` keeps them (personal feeds, one event, archives).
    past: dt.timedelta | None = None
    #: A yearly archive: events starting in this period ``[start, end)`` (local year bounds).
    period: tuple[dt.datetime, dt.datetime] | None = None

    def conditions(self, at: dt.datetime) -> list[ColumnElement[bool]]:
        """SQL conditions on ``Event`` for the events this feed shows at ``at``."""
        return [self.shown(at), *self.static_conditions(), *self.recent(at)]

    @staticmethod
    def shown(at: dt.datetime) -> ColumnElement[bool]:
        """Published or held events, and cancelled ones for a while (so clients see the cancellation)."""
        return or_(
            Event.status.in_((Status.PUBLISHED.value, Status.COMPLETED.value)),
            and_(Event.status == Status.CANCELLED.value, Event.cancelled_at >= at - CANCELLED_VISIBLE),
        )

    def recent(self, at: dt.datetime) -> list[ColumnElement[bool]]:
        """The events not yet aged out of a public feed (none for feeds that keep the past)."""
        return [] if self.past is None else [Event.last_ends_at >= at - self.past]

    def static_conditions(self) -> list[ColumnElement[bool]]:
        """The conditions that do not depend on time: kinds, organizations, person, event."""
        conditions: list[ColumnElement[bool]] = []
        if self.kinds is not None:
            conditions.append(Event.kind.in_(sorted(self.kinds)))
        if self.org_ids is not None:
            conditions.append(Event.org_id.in_(sorted(self.org_ids)))
        if self.event_id is not None:
            conditions.append(Event.id == self.event_id)
        if self.period is not None:
            conditions += [Event.starts_at >= self.period[0], Event.starts_at < self.period[1]]
        if self.personal:
            conditions.append(Event.id.in_(select(Registration.event_id).where(*self.registration_conditions())))
        return conditions

    def registration_conditions(self) -> list[ColumnElement[bool]]:
        """The participant's registrations that put an event in a personal calendar."""
        return [self.mine(), Registration.status.in_((RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value))]

    @property
    def personal(self) -> bool:
        """Whether this is a person's or a registration's own calendar."""
        return self.phone_hash is not None or self.registration_id is not None

    def mine(self) -> ColumnElement[bool]:
        """The condition on :class:`Registration` naming a personal calendar's registrations."""
        if self.registration_id is not None:
            return Registration.id == self.registration_id
        return Registration.phone_hash == self.phone_hash

    def removal_conditions(self) -> list[ColumnElement[bool]] | None:
        """Conditions on :class:`FeedRemoval` rows that concern this feed (``None``: none can)."""
        if self.personal or self.event_id is not None:
            return None  # a personal feed changes through registrations; a lone event has no removals
        conditions: list[ColumnElement[bool]] = []
        if self.kinds is not None:
            conditions.append(FeedRemoval.kind.in_(sorted(self.kinds)))
        if self.org_ids is not None:
            conditions.append(FeedRemoval.org_id.in_(sorted(self.org_ids)))
        return conditions

    def narrowed(self, kinds: list[str], org_slugs: list[str]) -> Scope:
        """This scope further limited by the ``?kinds=`` and ``?orgs=`` filters."""
        scope = self
        if kinds:
            unknown = set(kinds) - {k.value for k in Kind}
            if unknown:
                raise UnknownFilter(f"unknown kind: {', '.join(sorted(unknown))}")
            wanted = frozenset(kinds)
            scope = replace(scope, kinds=wanted if scope.kinds is None else scope.kinds & wanted)
        if org_slugs:
            ids = set()
            for slug in org_slugs:
                org = get_org_by_slug(slug)
                if org is None:
                    raise UnknownFilter(f"unknown organization: {slug}")
                ids.add(org.id)
            wanted_orgs = frozenset(subtree_ids(ids))
            scope = replace(scope, org_ids=wanted_orgs if scope.org_ids is None else scope.org_ids & wanted_orgs)
        if scope is not self:
            scope = replace(scope, key=f"{self.key}?kinds={','.join(sorted(kinds))}&orgs={','.join(sorted(org_slugs))}")
        return scope


def _past() -> dt.timedelta | None:
    """How long past events stay in public feeds (``FEED_PAST_DAYS``; 0: for ever)."""
    days = int(current_app.config.get("FEED_PAST_DAYS", 400))
    return dt.timedelta(days=days) if days > 0 else None


def all_scope() -> Scope:
    """Every public event (past ones for ``FEED_PAST_DAYS``)."""
    return Scope("all", "江门科普活动日程", "Jiangmen science & technology events", past=_past())


def kind_scope(kind: str) -> Scope | None:
    """One kind of event, or ``None`` for an unknown kind."""
    try:
        info = KINDS[Kind(kind)]
    except ValueError:
        return None
    return Scope(f"kinds/{kind}", info.name_zh, info.name_en, kinds=frozenset({kind}), past=_past())


def org_scope(slug: str) -> Scope | None:
    """An organization and everything below it, or ``None``."""
    org = get_org_by_slug(slug)
    if org is None:
        return None
    return Scope(f"orgs/{slug}", f"{org.name_zh} 科普活动", f"{org.name_en} events", org_ids=frozenset(subtree_ids({org.id})),
                 past=_past())


def county_scope(county: str) -> Scope | None:
    """The organizations located in one county, or ``None``."""
    if county not in COUNTIES:
        return None
    zh, en = COUNTIES[county]
    return Scope(f"counties/{county}", f"{zh} 科普活动", f"{en} events", org_ids=frozenset(county_org_ids(county)), past=_past())


def archive_scope(year: int) -> Scope | None:
    """Every public event that started in ``year`` (local time), kept for good; ``None`` for a year
    outside 2000 to this year."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    if not 2000 <= year <= now().astimezone(tz).year:
        return None
    start = dt.datetime(year, 1, 1, tzinfo=tz)
    end = dt.datetime(year + 1, 1, 1, tzinfo=tz)
    return Scope(f"archive/{year}", f"江门科普活动 {year}年", f"Jiangmen science & technology events {year}", period=(start, end))


def archive_years() -> list[int]:
    """The years with public events, oldest first, up to this year (each has an archive feed)."""
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    first = db.session.scalar(select(func.min(Event.starts_at)).where(Event.status != Status.DRAFT.value))
    this_year = now().astimezone(tz).year
    if first is None:
        return []
    return list(range(max(2000, first.astimezone(tz).year), this_year + 1))


def person_scope(phone_hash: str) -> Scope:
    """The events a verified person registered for (every registration of their number)."""
    return Scope(f"personal/{phone_hash}", "我的科普活动", "My science events", phone_hash=phone_hash)


def registration_scope(registration_id: int) -> Scope:
    """The event of one registration (while it holds a seat or waits for one)."""
    return Scope(f"personal/r{registration_id}", "我的科普活动", "My science events", registration_id=registration_id)


def event_scope(event_id: int) -> Scope:
    """A single event (the "add to calendar" download)."""
    return Scope(f"events/{event_id}", "科普活动", "Science event", event_id=event_id)


def every_public_scope() -> list[Scope]:
    """All public feeds, for the list of calendars."""
    scopes = [all_scope()]
    scopes += [s for k in Kind if (s := kind_scope(k.value))]
    scopes += [s for slug in db.session.scalars(select(Organization.slug).order_by(Organization.id)) if (s := org_scope(slug))]
    scopes += [s for c in COUNTIES if (s := county_scope(c))]
    scopes += [s for year in archive_years() if (s := archive_scope(year))]
    return scopes
