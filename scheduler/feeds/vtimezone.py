"""VTIMEZONE components in the form calendar clients read: yearly RRULEs, not RDATE lists.

``icalendar``'s own ``Timezone.from_tzid`` writes each observance as one DTSTART and a
comma-separated RDATE list. RFC 5545 allows it, but Mozilla's ical.js (Thunderbird and many
web clients) reads only the first RDATE value, so every daylight-saving change after the
first year is lost and summer times come out an hour off. Outlook, Apple Calendar and
tzurl.org write ``FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU`` rules instead; this module derives
such rules from the zone's transitions in ``zoneinfo``.

Each observance's DTSTART is the local time *before* the change (TZOFFSETFROM), as RFC 5545
requires: Europe/Berlin's DAYLIGHT starts at 02:00, its STANDARD at 03:00. A run of years
that follows one rule becomes one RRULE (with UNTIL, in UTC, when the rule later changes);
a transition that follows no yearly pattern stays a single DTSTART. A zone without
transitions (Asia/Shanghai, UTC) is one STANDARD block.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Component, Timezone, TimezoneDaylight, TimezoneStandard

from scheduler.util.time import UTC

_DAY = dt.timedelta(days=1)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Transition:
    """One change of a zone's offset or name, at ``at`` (UTC)."""

    at: dt.datetime
    offset_from: dt.timedelta
    offset_to: dt.timedelta
    name: str
    daylight: bool

    @property
    def local(self) -> dt.datetime:
        """The wall time just before the change (naive), as VTIMEZONE DTSTART and RRULE use it."""
        return (self.at + self.offset_from).replace(tzinfo=None)


def _state(tz: ZoneInfo, at: dt.datetime) -> tuple[dt.timedelta, bool, str]:
    local = at.astimezone(tz)
    return local.utcoffset() or dt.timedelta(0), bool(local.dst()), local.tzname() or ""


def transitions(tzid: str, first: dt.date, last: dt.date) -> tuple[tuple[dt.timedelta, bool, str], list[Transition]]:
    """The zone's state at ``first`` (offset, daylight, name) and every transition between ``first`` and ``last``.

    Found by stepping a day at a time and bisecting to the second; zones never change twice a day.
    """
    tz = ZoneInfo(tzid)
    day = dt.datetime.combine(first, dt.time(0), tzinfo=UTC)
    end = dt.datetime.combine(last, dt.time(0), tzinfo=UTC)
    state = _state(tz, day)
    initial = state
    found = []
    while day < end:
        following = day + _DAY
        after = _state(tz, following)
        if after != state:
            low, high = day, following  # state(low) == state, state(high) == after
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if _state(tz, middle) == state:
                    low = middle
                else:
                    high = middle
            found.append(Transition(high, state[0], after[0], after[2], after[1]))
            state = after
        day = following
    return initial, found


def _patterns(local: dt.datetime) -> set[str]:
    """The yearly rules a transition's local date fits: ``BYDAY=2SU``, ``BYDAY=-1SU`` or ``BYMONTHDAY=25``."""
    length = calendar.monthrange(local.year, local.month)[1]
    weekday = _WEEKDAYS[local.weekday()]
    patterns = {f"BYDAY={(local.day - 1) // 7 + 1}{weekday}", f"BYMONTHDAY={local.day}"}
    if local.day + 7 > length:
        patterns.add(f"BYDAY=-1{weekday}")
    return patterns


def _preferred(patterns: set[str]) -> str:
    """``-1SU`` over ``4SU`` over a fixed day, as tzdata states its rules."""
    return min(patterns, key=lambda p: (not p.startswith("BYDAY=-1"), not p.startswith("BYDAY"), p))


def _same_kind(a: Transition, b: Transition) -> bool:
    return (a.offset_from, a.offset_to, a.name, a.daylight, a.local.month, a.local.time()) == (
        b.offset_from, b.offset_to, b.name, b.daylight, b.local.month, b.local.time(),
    )


def _runs(found: list[Transition]) -> list[tuple[list[Transition], str | None]]:
    """Group each kind of transition (same offsets, name, month, time) into runs of consecutive years
    that fit one yearly rule; a transition fitting none stays alone (rule ``None``)."""
    runs: list[tuple[list[Transition], str | None]] = []
    open_runs: list[tuple[list[Transition], set[str]]] = []
    for item in found:
        for members, patterns in open_runs:
            last = members[-1]
            common = patterns & _patterns(item.local)
            if _same_kind(last, item) and item.local.year == last.local.year + 1 and common:
                members.append(item)
                patterns.intersection_update(common)
                break
        else:
            open_runs.append(([item], _patterns(item.local)))
    for members, patterns in open_runs:
        runs.append((members, _preferred(patterns) if len(members) > 1 else None))
    runs.sort(key=lambda run: run[0][0].at)
    return runs


def _observance(first: Transition, daylight: bool) -> Component:
    part = TimezoneDaylight() if daylight else TimezoneStandard()
    part.add("dtstart", first.local)
    part.add("tzname", first.name)
    part.add("tzoffsetfrom", first.offset_from)
    part.add("tzoffsetto", first.offset_to)
    return part


def vtimezone(tzid: str, first: dt.date, last: dt.date) -> Timezone:
    """The VTIMEZONE of ``tzid`` valid from ``first`` to ``last`` (and beyond, while the last rules hold)."""
    (offset, daylight, name), found = transitions(tzid, first, last)
    timezone = Timezone()
    timezone.add("tzid", tzid)
    start = Transition(dt.datetime.combine(first, dt.time(0), tzinfo=UTC) - offset, offset, offset, name, daylight)
    timezone.add_component(_observance(start, daylight))
    for members, pattern in _runs(found):
        head = members[0]
        part = _observance(head, head.daylight)
        if pattern is not None:
            key, _, value = pattern.partition("=")
            rule: dict[str, object] = {"FREQ": "YEARLY", "BYMONTH": head.local.month, key: value}
            if members[-1].local.year < last.year - 1:  # the rule stopped within the range
                rule["UNTIL"] = members[-1].at
            part.add("rrule", rule)
        timezone.add_component(part)
    return timezone
