"""Building blocks shared by the API schemas of every domain."""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from scheduler.util.text import strip_invisible

T = TypeVar("T")
D = TypeVar("D", dt.date, dt.datetime)

#: Years a date sent to the API may fall in: the plan's years with room to spare, and far
#: enough from year 1 and 9999 that time-zone and day arithmetic on them cannot overflow.
SUPPORTED_YEARS = range(1900, 2200)


def _split_csv(value: Any) -> Any:
    """Accept ``a,b`` and repeated query keys alike."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


#: A list in a query string: ``?kind=a,b`` or ``?kind=a&kind=b``.
CsvList = Annotated[list[T], BeforeValidator(_split_csv)]


def within_supported_years(value: D) -> D:
    """Refuse a date or time outside :data:`SUPPORTED_YEARS` (use as an ``AfterValidator``)."""
    if value.year not in SUPPORTED_YEARS:
        raise ValueError(f"give a year between {SUPPORTED_YEARS.start} and {SUPPORTED_YEARS.stop - 1}")
    return value


def _visible(value: Any) -> Any:
    return strip_invisible(value) if isinstance(value, str) else value


#: Text people read (titles, places, descriptions, names): invisible formatting characters
#: (U+202E and the other bidirectional controls, zero-width spaces, BOMs, ...) and C1 controls are
#: dropped before the field's own checks (:func:`scheduler.util.text.strip_invisible`); C0 controls
#: are still refused (below). Put it last: ``Annotated[str, StringConstraints(...), Visible]``.
Visible = BeforeValidator(_visible)


#: C0 control characters but tab, line feed and carriage return, and DEL: PostgreSQL cannot
#: store NUL, and iCalendar (RFC 5545) allows none of them in text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _has_control(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (in lists and dicts, keys included) holds a control character."""
    if isinstance(value, str):
        return _CONTROL.search(value) is not None
    if isinstance(value, dict):
        return any(_has_control(key) or _has_control(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_control(item) for item in value)
    return False


class _Input(BaseModel):
    """Base of what clients send: no text with control characters (but tab and line breaks), anywhere.

    PostgreSQL cannot store them (SQLite can), so they are refused alike on every database.
    """

    @field_validator("*")  # after parsing: a "before" validator would turn strict JSON parsing into Python's
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if _has_control(value):
            raise ValueError("text must not contain control characters")
        return value


class Body(_Input):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(_Input):
    """Base of query-string models: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Out(BaseModel):
    """Base of response models."""

    model_config = ConfigDict(from_attributes=True)


class PageQuery(Query):
    """Pagination parameters."""

    page: Annotated[int, Field(ge=1, le=100_000, description="Page number, from 1.")] = 1
    per_page: Annotated[int, Field(ge=1, le=100, description="Items per page (at most 100).")] = 20


class Page(Out, Generic[T]):
    """One page of a list."""

    items: list[T]
    page: int
    per_page: int
    total: int

