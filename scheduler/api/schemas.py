"""Building blocks shared by the API schemas of every domain."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")


def _split_csv(value: Any) -> Any:
    """Accept ``a,b`` and repeated query keys alike."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


#: A list in a query string: ``?kind=a,b`` or ``?kind=a&kind=b``.
CsvList = Annotated[list[T], BeforeValidator(_split_csv)]


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
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


DateOrDateTime = dt.datetime | dt.date
