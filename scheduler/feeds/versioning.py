"""Raise the feeds' version whenever a flush changes something a feed shows."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from scheduler.events.models import Event, EventOutcome, FeedRemoval
from scheduler.feeds.models import FeedVersion
from scheduler.orgs.models import Organization
from scheduler.registrations.models import Registration
from scheduler.targets.models import Target

FEEDS = "feeds"
#: Rows whose changes can change a feed's bytes (events, people's registrations,
#: organization names, the targets in the calendar description).
_WATCHED = (Event, EventOutcome, FeedRemoval, Organization, Registration, Target)


def current_version(session: Session) -> int:
    """The feeds' version as committed (or as this transaction changed it)."""
    return session.scalar(select(FeedVersion.version).where(FeedVersion.name == FEEDS)) or 0


@event.listens_for(Session, "before_flush")
def _bump_on_change(session: Session, _context: Any, _instances: Any) -> None:
    changed = any(isinstance(obj, _WATCHED) for obj in session.new) or any(
        isinstance(obj, _WATCHED) for obj in session.deleted
    ) or any(isinstance(obj, _WATCHED) and session.is_modified(obj) for obj in session.dirty)
    if changed:
        # An UPDATE, not read-modify-write: concurrent transactions queue on the row lock.
        session.execute(update(FeedVersion).where(FeedVersion.name == FEEDS).values(version=FeedVersion.version + 1))
