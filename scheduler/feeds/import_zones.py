"""Time zones of an imported calendar: IANA and Windows names, and zones only the file defines.

Outlook writes a zone the user edited, or one Windows has no name for, as
``TZID:Customized Time Zone`` with its VTIMEZONE in the file. Events keep an IANA zone
(what the feeds, reminders and texts use), so such a definition is matched to the IANA
zone with the same UTC offsets every day of the years around the event: the calendar's
own zone and Asia/Shanghai first, then the zones Windows names map to, then every other.
"""
from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from icalendar import Timezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from scheduler.util.time import UTC

#: Days compared, from 1 January of the event's year (two years: both transitions, twice).
_DAYS = 731
#: A VTIMEZONE rule must be yearly (or absent): anything else is not a time zone anyone uses,
#: and would cost seconds to expand.
_YEARLY = "YEARLY"


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def iana_zone(tzid: str) -> str | None:
    """The IANA zone a TZID names: the TZID itself, or the zone of a Windows name (Outlook's
    ``China Standard Time``); ``None`` when the name is unknown."""
    name = tzid.strip().strip('"')
    if name in _iana_names():
        return name
    mapped = WINDOWS_TO_OLSON.get(name)
    return mapped if mapped in _iana_names() else None


def _candidates(preferred: Iterable[str]) -> list[str]:
    names = _iana_names()
    ordered = [*preferred, "Asia/Shanghai", *WINDOWS_TO_OLSON.values(), *sorted(names)]
    return [name for name in dict.fromkeys(ordered) if name in names]


def _only_yearly_rules(component: Timezone) -> bool:
    for rule in component.walk("STANDARD") + component.walk("DAYLIGHT"):
        rrule = rule.get("RRULE")
        if isinstance(rrule, list) or (rrule is not None and rrule.get("FREQ") != [_YEARLY]):
            return False
    return True


@lru_cache(maxsize=64)
def zone_of_definition(block: str, year: int, preferred: tuple[str, ...] = ()) -> str | None:
    """The IANA zone whose offsets match the VTIMEZONE ``block`` every day of ``year`` and the next;
    ``None`` when it cannot be read or no zone matches."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            component = Timezone.from_ical(block)
            if not isinstance(component, Timezone) or not _only_yearly_rules(component):
                return None
            defined = component.to_tz(lookup_tzid=False)  # never cached: the file's definition stays its own
            start = dt.datetime(year, 1, 1, 12, tzinfo=UTC)
            days = [start + dt.timedelta(days=n) for n in range(_DAYS)]
            offsets = [day.astimezone(defined).utcoffset() for day in days]
    except Exception:  # noqa: BLE001  (a hostile definition may break the parser in any way)
        return None
    for name in _candidates(preferred):
        zone = ZoneInfo(name)
        if all(day.astimezone(zone).utcoffset() == offset for day, offset in zip(days, offsets)):
            return name
    return None

