"""Subscribe links for a feed: https, webcal and Google Calendar."""
from __future__ import annotations

from urllib.parse import quote

from pydantic import Field

from scheduler.api.schemas import Out


class CalendarLinks(Out):
    """How to subscribe to one calendar."""

    url: str = Field(description="The feed itself (https in production).")
    webcal: str = Field(description="Opens the system calendar app's subscribe dialog.")
    google: str = Field(description="Adds the feed to Google Calendar.")


def subscribe_links(url: str) -> CalendarLinks:
    """Links for the feed at absolute ``url`` (``http(s)://…``)."""
    webcal = "webcal://" + url.split("://", 1)[1]
    return CalendarLinks(url=url, webcal=webcal, google="https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""))
