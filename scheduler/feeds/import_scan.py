"""The checks an imported calendar passes before any parser sees it.

A size cap, text (UTF-8, UTF-16 with a BOM, or GBK/GB18030) without NUL characters, one ``VCALENDAR`` with every ``BEGIN``
closed by its ``END``, a maximum nesting depth and a maximum number of events. The scan
also notes the line where each event begins (for messages) and leaves out the
``VTIMEZONE`` blocks out of what the parser reads: time zones are taken by their IANA (or
Windows) name, and a zone only the file defines (Outlook's "Customized Time Zone") is matched
to an IANA zone from its block (:mod:`scheduler.feeds.import_zones`), never taken into the
parser's process-wide cache.
"""
from __future__ import annotations

import codecs

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.feeds.import_errors import N_, ImportRejected, Problem

_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ImportLimits:
    """How much an imported calendar may hold."""

    max_bytes: int = 5 * 1024 * 1024
    #: BEGIN blocks inside each other: VCALENDAR > VEVENT > VALARM is 3.
    max_depth: int = 4
    max_events: int = 5000
    #: Seconds reading the events may take (recurrence rules can be made slow to expand).
    max_seconds: float = 20.0
    #: An open-ended series (RRULE without COUNT or UNTIL) is imported this many days ahead.
    open_rule_days: int = 365

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImportLimits:
        """The limits set by ``IMPORT_MAX_BYTES``, ``IMPORT_MAX_DEPTH``, ``IMPORT_MAX_EVENTS``, ``IMPORT_MAX_SECONDS``
        and ``IMPORT_OPEN_RULE_DAYS``."""
        default = cls()
        return cls(
            max_bytes=int(config.get("IMPORT_MAX_BYTES", default.max_bytes)),
            max_depth=int(config.get("IMPORT_MAX_DEPTH", default.max_depth)),
            max_events=int(config.get("IMPORT_MAX_EVENTS", default.max_events)),
            max_seconds=float(config.get("IMPORT_MAX_SECONDS", default.max_seconds)),
            open_rule_days=int(config.get("IMPORT_OPEN_RULE_DAYS", default.open_rule_days)),
        )


@dataclass(frozen=True)
class ScannedCalendar:
    """A calendar that passed the scan: its text for the parser and where its events begin."""

    text: str
    #: Line number of each top-level ``BEGIN:VEVENT``, in file order.
    event_lines: tuple[int, ...]
    #: The file's VTIMEZONE blocks by TZID (their text, left out of :attr:`text`).
    zones: Mapping[str, str] = field(default_factory=dict)


def _reject(message: str, line: int | None = None, **params: Any) -> ImportRejected:
    return ImportRejected([Problem(message, line=line, params=params)])


def human_size(size: int) -> str:
    """``5.0 MiB``, or ``2,000 bytes`` below a mebibyte."""
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _decode(data: bytes, limits: ImportLimits) -> str:
    if len(data) > limits.max_bytes:
        raise _reject(N_("The file is too large (%(size)s); at most %(limit)s are imported."),
                      size=human_size(len(data)), limit=human_size(limits.max_bytes))
    if not data.strip():
        raise _reject(N_("The file is empty."))
    text = _text_of(data)
    if "\x00" in text:
        raise _reject(N_("Not an iCalendar file: it contains NUL characters."))
    return text


def _text_of(data: bytes) -> str:
    """The file as text: UTF-8 (with or without a BOM), UTF-16 with its BOM (Windows tools), or
    GB18030/GBK (older Chinese tools; taken only when it then reads as an iCalendar file)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _reject(N_("Not an iCalendar file: it starts as UTF-16 text but breaks at byte %(byte)s."), byte=exc.start) from None
    try:
        return data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        position = exc.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        return text
    raise _reject(N_("Not an iCalendar file: it is not UTF-8 text (byte %(byte)s), nor UTF-16 or GBK/GB18030 text."), byte=position)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfold continuation lines (RFC 5545 3.1); each logical line keeps its first line number."""
    lines: list[tuple[int, str]] = []
    for number, physical in enumerate(_LINE_BREAK.split(text), start=1):
        if physical[:1] in (" ", "\t") and lines:
            first, so_far = lines[-1]
            lines[-1] = (first, so_far + physical[1:])
        elif physical.strip():
            lines.append((number, physical))
    return lines


def _delimiter(line: str) -> tuple[str, str] | None:
    """``("BEGIN", "VEVENT")`` for a component delimiter, else ``None``."""
    head, sep, value = line.partition(":")
    if sep and head.upper() in ("BEGIN", "END"):
        return head.upper(), value.strip().upper()
    return None


def scan_calendar(data: bytes, limits: ImportLimits) -> ScannedCalendar:
    """Check the file's size, encoding and structure; raise :class:`ImportRejected` on the first fault."""
    lines = _logical_lines(_decode(data, limits))
    if not lines or _delimiter(lines[0][1]) != ("BEGIN", "VCALENDAR"):
        raise _reject(N_("Not an iCalendar file: it does not begin with BEGIN:VCALENDAR."), lines[0][0] if lines else None)
    stack: list[tuple[str, int]] = []
    kept: list[str] = []
    event_lines: list[int] = []
    closed = False
    skip_below: int | None = None  # depth of a VTIMEZONE being left out
    zone_lines: list[str] = []
    zones: dict[str, str] = {}
    for number, line in lines:
        delimiter = _delimiter(line)
        if closed:
            raise _reject(N_("Only one calendar per file: there is more after END:VCALENDAR."), number)
        if delimiter and delimiter[0] == "BEGIN":
            stack.append((delimiter[1], number))
            if len(stack) > limits.max_depth:
                raise _reject(N_("Components are nested %(depth)s deep; at most %(most)s levels are accepted."), number,
                              depth=len(stack), most=limits.max_depth)
            if len(stack) == 2 and delimiter[1] == "VEVENT":
                event_lines.append(number)
                if len(event_lines) > limits.max_events:
                    raise _reject(N_("The file holds more than %(most)s events."), number, most=f"{limits.max_events:,}")
            if delimiter[1] == "VTIMEZONE" and skip_below is None:
                skip_below = len(stack)
        elif delimiter:
            if not stack:
                raise _reject(N_("END:%(name)s without a BEGIN."), number, name=delimiter[1])
            name, began = stack[-1]
            if delimiter[1] != name:
                raise _reject(N_("END:%(end)s does not close BEGIN:%(name)s (line %(began)s)."), number,
                              end=delimiter[1], name=name, began=began)
            stack.pop()
            closed = not stack
            if skip_below is not None and len(stack) < skip_below:
                skip_below = None
                zone_lines.append(line)
                _keep_zone(zone_lines, zones)
                zone_lines = []
                continue
        if skip_below is None:
            kept.append(line)
        else:
            zone_lines.append(line)
    if stack:
        name, began = stack[-1]
        raise _reject(N_("BEGIN:%(name)s is never closed."), began, name=name)
    return ScannedCalendar("\r\n".join(kept) + "\r\n", tuple(event_lines), zones)


def _keep_zone(lines: list[str], zones: dict[str, str]) -> None:
    """Keep a top-level VTIMEZONE block under its TZID (the first definition of a TZID wins)."""
    tzids = [line.partition(":")[2].strip() for line in lines if line.partition(":")[0].strip().upper() == "TZID"]
    if tzids and tzids[0] and tzids[0] not in zones:
        zones[tzids[0]] = "\r\n".join(lines) + "\r\n"
