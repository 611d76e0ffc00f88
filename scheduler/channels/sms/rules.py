"""The rules SMS lives with in China: mainland mobile numbers, quiet hours, a daily cap per number."""
from __future__ import annotations

import datetime as dt

import phonenumbers

from scheduler.util.time import SHANGHAI

#: Providers that reach mainland numbers only.
DOMESTIC_PROVIDERS = frozenset({"aliyun", "tencent"})
#: Texts go between 08:00 and 21:00 Shanghai time.
QUIET_ENDS, QUIET_STARTS = dt.time(8, 0), dt.time(21, 0)
#: "Morning is too late" when the event starts less than this after 08:00.
MORNING_MARGIN = dt.timedelta(hours=1)


def is_mainland_mobile(e164: str) -> bool:
    """Whether the number is a mainland China mobile number (+86 1[3-9]…), as domestic providers need."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return (number.country_code == 86 and phonenumbers.is_valid_number(number)
            and phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE))


def send_time(due: dt.datetime, starts_at: dt.datetime | None, now: dt.datetime | None = None) -> dt.datetime:
    """When a text due at ``due`` goes, no earlier than ``now``: at once between 08:00 and 21:00
    Shanghai time; in the night at 08:00, or at 20:59 the evening before when 08:00 would
    be too close to the event (less than an hour before its start). When neither is
    possible any more (the evening has passed and the event starts before 08:00), at 08:00
    if that is still before the start, else at once: a text at night beats a missed event.
    """
    moment = max(due, now) if now is not None else due
    local = moment.astimezone(SHANGHAI)
    if QUIET_ENDS <= local.time() < QUIET_STARTS:
        return moment
    morning_day = local.date() if local.time() < QUIET_ENDS else local.date() + dt.timedelta(days=1)
    morning = dt.datetime.combine(morning_day, QUIET_ENDS, tzinfo=SHANGHAI)
    if starts_at is None or morning + MORNING_MARGIN <= starts_at:
        return morning
    evening = dt.datetime.combine(morning_day - dt.timedelta(days=1), QUIET_STARTS, tzinfo=SHANGHAI) - dt.timedelta(minutes=1)
    if now is None or evening >= now:
        return evening
    return morning if morning < starts_at else moment


def next_morning(at: dt.datetime) -> dt.datetime:
    """08:00 Shanghai time on the day after ``at`` (where a text over the daily cap waits)."""
    day = at.astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, QUIET_ENDS, tzinfo=SHANGHAI)


def local_day(at: dt.datetime) -> dt.date:
    """The Shanghai calendar day of ``at`` (the daily cap counts these)."""
    return at.astimezone(SHANGHAI).date()
