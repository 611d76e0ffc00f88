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
from scheduler.registrations.operations import get_by_token
from scheduler.util.urls import absolute_url


class CalendarOut(CalendarLinks):
    """One public calendar feed."""

    key: str = Field(description="all, kinds/<kind>, orgs/<slug> or counties/<county>.")
    name_zh: str
    name_en: str


class CalendarList(Out):
    """Every public calendar feed. Each also takes ?kinds=a,b&orgs=x,y filters and ?alarm=PT1H."""

    items: list[CalendarOut]


class PersonalCalendarOut(Out):
    """The participant's personal calendar (``null`` links once revoked)."""

    registration_id: int
    links: CalendarLinks | None


def personal_links(phone: str) -> CalendarLinks | None:
    """The subscribe links of the participant's personal calendar, or ``None`` if revoked."""
    token = personal.ensure_token(phone)
    if token is None:
        return None
    return subscribe_links(absolute_url("feeds.personal", token=token))


def _registration(token: str) -> Registration:
    registration = get_by_token(token)
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


@endpoint(bp, "/registrations/<token>/calendar", summary="The personal calendar link", tag="calendars", response=PersonalCalendarOut, auth="none")
def get_personal_calendar(token: str) -> PersonalCalendarOut:
    """By the registration's private token: the link to every event the participant registered for."""
    registration = _registration(token)
    links = personal_links(registration.phone)
    db.session.commit()
    return PersonalCalendarOut(registration_id=registration.id, links=links)


@endpoint(bp, "/registrations/<token>/calendar", "POST", summary="Issue a new personal calendar link", tag="calendars", response=PersonalCalendarOut, auth="none")
def reissue_personal_calendar(token: str) -> PersonalCalendarOut:
    """The old link stops working at once (for a link that was shared by mistake)."""
    registration = _registration(token)
    personal.reissue_token(registration.phone)
    links = personal_links(registration.phone)
    db.session.commit()
    return PersonalCalendarOut(registration_id=registration.id, links=links)


@endpoint(bp, "/registrations/<token>/calendar", "DELETE", summary="Revoke the personal calendar link", tag="calendars", auth="none")
def revoke_personal_calendar(token: str) -> None:
    """The link stops working; a new one can be issued later."""
    registration = _registration(token)
    personal.revoke_token(registration.phone)
    db.session.commit()
