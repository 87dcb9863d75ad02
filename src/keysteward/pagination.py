"""Paging, filtering and sorting shared by every list route of the API.

Every list returns ``{"items": [...], "next": OFFSET}``, where ``next`` is the
``offset`` of the following page, or null on the last page.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Select
from sqlalchemy.orm import Session

from keysteward.clock import as_utc

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# The largest value of a 32-bit signed INTEGER column, as PostgreSQL stores ids.
MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The record's id.")]
RowIdFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the offset of the next page."""

    items: list[T]
    next: int | None


class ApiModel(BaseModel):
    """Base of response models, which may be read from ORM rows.

    Every datetime leaves with a UTC offset, because SQLite hands back naive
    datetimes and RFC 3339 (OpenAPI's date-time) requires the offset.
    """

    model_config = ConfigDict(from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _aware_datetimes(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value)
        return value


class PageParams:
    """The ``limit``, ``offset`` and ``sort`` query parameters of a list."""

    def __init__(
        self,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")
        ] = DEFAULT_LIMIT,
        offset: Annotated[
            int, Query(ge=0, le=10_000_000, description="Items to skip.")
        ] = 0,
        sort: Annotated[
            str | None,
            Query(
                max_length=50,
                description="Field to sort by; prefix with '-' for descending.",
            ),
        ] = None,
    ) -> None:
        self.limit = limit
        self.offset = offset
        self.sort = sort


def apply_sort(
    query: Select[Any], sort: str | None, sortable: Mapping[str, Any], default: str
) -> Select[Any]:
    """Order ``query`` by ``sort`` (``-`` prefix: descending), then by the default.

    Raises HTTPException 422 naming the allowed fields for an unknown field.
    """
    text = sort or default
    descending = text.startswith("-")
    name = text.removeprefix("-")
    column = sortable.get(name)
    if column is None:
        allowed = ", ".join(sorted(sortable))
        raise HTTPException(
            422, f"invalid sort field {name!r}; sort by one of: {allowed}"
        )
    ordered = column.desc() if descending else column.asc()
    tie_breaker = sortable[default.removeprefix("-")]
    return query.order_by(ordered, tie_breaker)


def fetch_page(
    session: Session,
    query: Select[Any],
    params: PageParams,
    sortable: Mapping[str, Any],
    default_sort: str,
    convert: Callable[[Any], T],
) -> Page[T]:
    """Run ``query`` for one page and convert each row with ``convert``."""
    ordered = apply_sort(query, params.sort, sortable, default_sort)
    rows: Sequence[Any] = session.scalars(
        ordered.offset(params.offset).limit(params.limit + 1)
    ).all()
    more = len(rows) > params.limit
    items = [convert(row) for row in rows[: params.limit]]
    return Page[T](items=items, next=params.offset + params.limit if more else None)


def page_of_list(items: Sequence[T], params: PageParams) -> Page[T]:
    """Cut one page from an already filtered and sorted list."""
    chunk = list(items[params.offset : params.offset + params.limit])
    more = len(items) > params.offset + params.limit
    return Page[T](items=chunk, next=params.offset + params.limit if more else None)
