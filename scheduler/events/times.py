"""Event times: time zones, all-day dates, recurrence rules and the spans they cover."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from scheduler.api.errors import Invalid
from scheduler.i18n import N_
from scheduler.util.time import UTC

#: A series may have at most this many occurrences.
MAX_OCCURRENCES = 366
#: An event or series may not span more than this.
MAX_SPAN = dt.timedelta(days=366)
DEFAULT_DURATION = dt.timedelta(hours=2)
_RRULE_CHARS = re.compile(r"^[A-Z0-9=;,:+\-]+$")
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name`` or raise a 422 on ``timezone``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(fields={"timezone": f"Unknown time zone {name!r}; use an IANA name such as Asia/Shanghai."}) from None


@dataclass(frozen=True)
class Times:
    """Normalised times of an event, in UTC."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    last_ends_at: dt.datetime
    rrule: str | None

    @property
    def span_seconds(self) -> int:
        """Seconds from the first start to the last end."""
        return int((self.last_ends_at - self.starts_at).total_seconds())


def _local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(UTC)


def _all_day_bounds(start: dt.date | dt.datetime, end: dt.date | dt.datetime | None, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    first = start.astimezone(tz).date() if isinstance(start, dt.datetime) else start
    if end is None:
        last_exclusive = first + dt.timedelta(days=1)
    elif isinstance(end, dt.datetime):
        local = end.astimezone(tz)
        # An exclusive end at midnight ends the day before; any later time includes its day.
        last_exclusive = local.date() if local.time() == dt.time(0) else local.date() + dt.timedelta(days=1)
    else:
        last_exclusive = end + dt.timedelta(days=1)  # a plain date is the last day, inclusive
    return _local_midnight(first, tz), _local_midnight(last_exclusive, tz)


def _timed_bounds(start: dt.date | dt.datetime, end: dt.date | dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    errors = {}
    if not isinstance(start, dt.datetime):
        errors["starts_at"] = N_("Give a date and time with a UTC offset (or set all_day for a date).")
    if end is not None and not isinstance(end, dt.datetime):
        errors["ends_at"] = N_("Give a date and time with a UTC offset (or set all_day for a date).")
    if errors:
        raise Invalid(fields=errors)
    assert isinstance(start, dt.datetime)
    starts = start.astimezone(UTC)
    ends = end.astimezone(UTC) if isinstance(end, dt.datetime) else starts + DEFAULT_DURATION
    return starts, ends


#: The rule parts events use. Sub-daily frequencies and BYWEEKNO/BYYEARDAY/BYHOUR… are
#: refused: no event recurs that way, and dateutil searches until the year 9999 for a
#: combination that never matches (seconds of CPU per request).
_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}
_FREQS = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _numbers(text: str) -> list[int] | None:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        return None


def _unsupported(parts: dict[str, str]) -> str | None:
    """Why a rule cannot be used for events (or whose filters can never match), else ``None``."""
    unknown = sorted(set(parts) - _PARTS)
    if unknown:
        return f"Rule parts not supported for events: {', '.join(unknown)}."
    freq = parts.get("FREQ", "")
    if freq not in _FREQS:
        return N_("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY.")
    by_period = freq in ("MONTHLY", "YEARLY")
    if "BYDAY" in parts and re.search(r"[+-]?\d", parts["BYDAY"]) and not by_period:
        return N_("A numbered BYDAY (such as 2MO) needs FREQ=MONTHLY or YEARLY.")
    if "BYSETPOS" in parts and not by_period:
        return N_("BYSETPOS needs FREQ=MONTHLY or YEARLY.")
    months = _numbers(parts["BYMONTH"]) if "BYMONTH" in parts else list(range(1, 13))
    days = _numbers(parts["BYMONTHDAY"]) if "BYMONTHDAY" in parts else None
    if months is None or any(not 1 <= m <= 12 for m in months):
        return N_("BYMONTH takes months 1 to 12.")
    if days is not None and not any(0 < abs(d) <= _MONTH_DAYS[m - 1] for m in months for d in days):
        return N_("No month of BYMONTH has a day of BYMONTHDAY: the series would never happen.")
    return None


def parse_rrule(text: str, first_start: dt.datetime) -> rrule:
    """Parse an RFC 5545 RRULE value for a series starting at ``first_start`` (aware, local).

    The series must end (COUNT or UNTIL, UNTIL in UTC) and have at most
    :data:`MAX_OCCURRENCES` occurrences; anything else is a 422 on ``rrule``.
    """
    value = text.strip()
    if value.upper().startswith("RRULE:"):
        value = value[6:]
    if not _RRULE_CHARS.match(value) or "FREQ=" not in value:
        raise Invalid(fields={"rrule": N_("Not an RFC 5545 rule such as FREQ=WEEKLY;COUNT=4.")})
    if "COUNT=" not in value and "UNTIL=" not in value:
        raise Invalid(fields={"rrule": N_("The series must end: give COUNT or UNTIL.")})
    if "COUNT=" in value and "UNTIL=" in value:
        raise Invalid(fields={"rrule": N_("Give COUNT or UNTIL, not both.")})
    interval = re.search(r"(?:^|;)INTERVAL=([^;]*)", value)
    if interval and not (interval[1].isdigit() and int(interval[1]) > 0):
        raise Invalid(fields={"rrule": N_("INTERVAL must be a whole number of at least 1.")})
    problem = _unsupported(dict(part.partition("=")[::2] for part in value.split(";")))
    if problem:
        raise Invalid(fields={"rrule": problem})
    try:
        rule = rrulestr(value, dtstart=first_start)
    except (ValueError, TypeError, KeyError) as exc:
        raise Invalid(fields={"rrule": f"Invalid recurrence rule: {exc}"}) from None
    if not isinstance(rule, rrule):
        raise Invalid(fields={"rrule": N_("Give one RRULE value only.")})
    return rule


def occurrence_starts(starts_at: dt.datetime, tz_name: str, rule_text: str | None) -> list[dt.datetime]:
    """Return the UTC start of every occurrence (one for a single event), expanded in local time."""
    if not rule_text:
        return [starts_at]
    local = starts_at.astimezone(ZoneInfo(tz_name))
    rule = parse_rrule(rule_text, local)
    return [occ.astimezone(UTC) for occ in islice(rule, MAX_OCCURRENCES + 1)]


def normalize_times(
    start: dt.date | dt.datetime,
    end: dt.date | dt.datetime | None,
    *,
    all_day: bool,
    tz_name: str,
    rule_text: str | None,
) -> Times:
    """Check and normalise an event's times; every problem is a 422 naming its field."""
    tz = zone(tz_name)
    starts, ends = _all_day_bounds(start, end, tz) if all_day else _timed_bounds(start, end)
    if not _EARLIEST <= starts < _LATEST:
        raise Invalid(fields={"starts_at": N_("The start must lie between the years 2000 and 2099.")})
    if ends <= starts:
        raise Invalid(fields={"ends_at": N_("The end must come after the start.")})
    rule = None
    last_ends = ends
    if rule_text:
        rule = rule_text.strip().removeprefix("RRULE:").removeprefix("rrule:")
        starts_list = occurrence_starts(starts, tz_name, rule)
        if len(starts_list) > MAX_OCCURRENCES:
            raise Invalid(fields={"rrule": N_("A series may have at most 366 occurrences.")})  # MAX_OCCURRENCES
        if not starts_list:
            raise Invalid(fields={"rrule": N_("The rule gives no occurrence.")})
        last_ends = starts_list[-1] + (ends - starts)
    if last_ends - starts > MAX_SPAN:
        field = "rrule" if rule else "ends_at"
        raise Invalid(fields={field: N_("An event or series may span at most 366 days.")})
    return Times(starts, ends, last_ends, rule)
