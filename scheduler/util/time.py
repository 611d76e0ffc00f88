"""The one clock of the application.

Everything that needs "now" calls :func:`now`; tests replace the clock with
:func:`set_clock` (or the :func:`frozen` context manager) so nothing sleeps or
depends on the wall clock.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _system_now() -> dt.datetime:
    return dt.datetime.now(UTC)


_clock: Callable[[], dt.datetime] = _system_now


def now() -> dt.datetime:
    """Return the current time as an aware UTC datetime, from the injected clock."""
    return _clock().astimezone(UTC)


def set_clock(clock: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (``None`` restores the system clock)."""
    global _clock
    _clock = clock or _system_now


@contextlib.contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Freeze :func:`now` at ``at`` (an aware datetime) for the duration of the block."""
    previous = _clock
    set_clock(lambda: at)
    try:
        yield
    finally:
        set_clock(previous)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Convert an aware datetime to UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
