"""The checks an imported calendar passes before any parser sees it.

A size cap, text (UTF-8, UTF-16 with a BOM, or GBK/GB18030) without NUL characters, one ``VCALENDAR`` with every ``BEGIN``
closed by its ``END``, a maximum nesting depth and a maximum number of events. The scan
also notes the line where each event begins (for messages) and leaves out the
``VTIMEZONE`` blocks: time zones are taken by their IANA name, never from a definition
in the file (which the parser would otherwise keep in a process-wide cache).
"""
from __future__ import annotations

import codecs

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scheduler.feeds.import_errors import ImportRejected, Problem

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

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImportLimits:
        """The limits set by ``IMPORT_MAX_BYTES``, ``IMPORT_MAX_DEPTH``, ``IMPORT_MAX_EVENTS`` and ``IMPORT_MAX_SECONDS``."""
        default = cls()
        return cls(
            max_bytes=int(config.get("IMPORT_MAX_BYTES", default.max_bytes)),
            max_depth=int(config.get("IMPORT_MAX_DEPTH", default.max_depth)),
            max_events=int(config.get("IMPORT_MAX_EVENTS", default.max_events)),
            max_seconds=float(config.get("IMPORT_MAX_SECONDS", default.max_seconds)),
        )


@dataclass(frozen=True)
class ScannedCalendar:
    """A calendar that passed the scan: its text for the parser and where its events begin."""

    text: str
    #: Line number of each top-level ``BEGIN:VEVENT``, in file order.
    event_lines: tuple[int, ...]


def _reject(message: str, line: int | None = None) -> ImportRejected:
    return ImportRejected([Problem(message, line=line)])


def human_size(size: int) -> str:
    """``5.0 MiB``, or ``2,000 bytes`` below a mebibyte."""
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _decode(data: bytes, limits: ImportLimits) -> str:
    if len(data) > limits.max_bytes:
        raise _reject(f"The file is too large ({human_size(len(data))}); at most {human_size(limits.max_bytes)} are imported.")
    if not data.strip():
        raise _reject("The file is empty.")
    text = _text_of(data)
    if "\x00" in text:
        raise _reject("Not an iCalendar file: it contains NUL characters.")
    return text


def _text_of(data: bytes) -> str:
    """The file as text: UTF-8 (with or without a BOM), UTF-16 with its BOM (Windows tools), or
    GB18030/GBK (older Chinese tools; taken only when it then reads as an iCalendar file)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _reject(f"Not an iCalendar file: it starts as UTF-16 text but breaks at byte {exc.start}.") from None
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
    raise _reject(f"Not an iCalendar file: it is not UTF-8 text (byte {position}), nor UTF-16 or GBK/GB18030 text.")


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
        raise _reject("Not an iCalendar file: it does not begin with BEGIN:VCALENDAR.", lines[0][0] if lines else None)
    stack: list[tuple[str, int]] = []
    kept: list[str] = []
    event_lines: list[int] = []
    closed = False
    skip_below: int | None = None  # depth of a VTIMEZONE being left out
    for number, line in lines:
        delimiter = _delimiter(line)
        if closed:
            raise _reject("Only one calendar per file: there is more after END:VCALENDAR.", number)
        if delimiter and delimiter[0] == "BEGIN":
            stack.append((delimiter[1], number))
            if len(stack) > limits.max_depth:
                raise _reject(f"Components are nested {len(stack)} deep; at most {limits.max_depth} levels are accepted.", number)
            if len(stack) == 2 and delimiter[1] == "VEVENT":
                event_lines.append(number)
                if len(event_lines) > limits.max_events:
                    raise _reject(f"The file holds more than {limits.max_events:,} events.", number)
            if delimiter[1] == "VTIMEZONE" and skip_below is None:
                skip_below = len(stack)
        elif delimiter:
            if not stack:
                raise _reject(f"END:{delimiter[1]} without a BEGIN.", number)
            name, began = stack[-1]
            if delimiter[1] != name:
                raise _reject(f"END:{delimiter[1]} does not close BEGIN:{name} (line {began}).", number)
            stack.pop()
            closed = not stack
            if skip_below is not None and len(stack) < skip_below:
                skip_below = None
                continue
        if skip_below is None:
            kept.append(line)
    if stack:
        name, began = stack[-1]
        raise _reject(f"BEGIN:{name} is never closed.", began)
    return ScannedCalendar("\r\n".join(kept) + "\r\n", tuple(event_lines))
