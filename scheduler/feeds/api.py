"""Feed endpoints of the JSON API: the list of calendars and personal calendar links."""
from __future__ import annotations

from pydantic import Field

from scheduler.api import bp, endpoint
from scheduler.api.errors import NotFound
from scheduler.api.schemas import Out
from scheduler.extensions import db
from scheduler.feeds import personal, scopes
from scheduler.feeds.links import CalendarLinks, subscribe_links
from scheduler.feeds.views import feed_url
from scheduler.registrations.models import Registration
from scheduler.registrations.operations import get_active
from scheduler.util.urls import absolute_url


class CalendarOut(CalendarLinks):
    """One public calendar feed."""

    key: str = Field(description="all, kinds/<kind>, orgs/<slug>, counties/<county> or archive/<year> (a past year, kept for good).")
    name_zh: str
    name_en: str


class CalendarList(Out):
    """Every public calendar feed. Each also takes ?kinds=a,b&orgs=x,y filters and ?alarm=PT1H."""

    items: list[CalendarOut]


class PersonalCalendarOut(Out):
    """A registration's own calendar (``null`` links once revoked)."""

    registration_id: int
    links: CalendarLinks | None


def registration_links(registration: Registration) -> CalendarLinks | None:
    """The subscribe links of a registration's own calendar, or ``None`` (revoked, cancelled)."""
    token = personal.registration_token(registration)
    return subscribe_links(absolute_url("feeds.personal", token=token)) if token else None


def person_links(phone_hash: str) -> CalendarLinks | None:
    """The subscribe links of a proved number's calendar (every registration), or ``None`` if revoked."""
    token = personal.person_token(phone_hash)
    return subscribe_links(absolute_url("feeds.personal", token=token)) if token else None


def _registration(token: str) -> Registration:
    """The registration while active: a cancelled or erased one's token opens no calendar."""
    registration = get_active(token)
    if registration is None:
        raise NotFound("No such registration.")
    return registration


@endpoint(bp, "/calendars", summary="List the calendar feeds", tag="calendars", response=CalendarList, auth="none")
def list_calendars() -> CalendarList:
    """All events, each kind, each organization (with those below it) and each county."""
    items = []
    for scope in scopes.every_public_scope():
        links = subscribe_links(feed_url(scope))
        items.append(CalendarOut(key=scope.key, name_zh=scope.name_zh, name_en=scope.name_en, **links.model_dump()))
    return CalendarList(items=items)


@endpoint(bp, "/registrations/<token>/calendar", summary="The registration's calendar link", tag="calendars", response=PersonalCalendarOut, auth="none")
def get_personal_calendar(token: str) -> PersonalCalendarOut:
    """By the registration's private token: the link to this registration's event (404 once cancelled)."""
    registration = _registration(token)
    return PersonalCalendarOut(registration_id=registration.id, links=registration_links(registration))


@endpoint(bp, "/registrations/<token>/calendar", "POST", summary="Issue a new calendar link", tag="calendars", response=PersonalCalendarOut, auth="none")
def reissue_personal_calendar(token: str) -> PersonalCalendarOut:
    """The old link stops working at once (for a link that was shared by mistake)."""
    registration = _registration(token)
    personal.issue_for_registration(registration)
    links = registration_links(registration)
    db.session.commit()
    return PersonalCalendarOut(registration_id=registration.id, links=links)


@endpoint(bp, "/registrations/<token>/calendar", "DELETE", summary="Revoke the calendar link", tag="calendars", auth="none")
def revoke_personal_calendar(token: str) -> None:
    """The link stops working; a new one can be issued later."""
    registration = _registration(token)
    personal.revoke_for_registration(registration)
    db.session.commit()
