"""Opaque keyset cursors: the client hands back what it got, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from api.errors import BadRequest
from api.schemas.fields import in_supported_range, storable_text

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
"""The ``limit`` parameter of every list: at most ``MAX_PAGE_SIZE`` items a page."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None


async def page_request(
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the page before.")
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageQuery = Annotated[PageRequest, Depends(page_request)]
"""The ``limit`` and ``cursor`` query parameters of a list."""


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, expected_keys: frozenset[str]) -> dict[str, Any]:
    """The position inside ``cursor``; a tampered or foreign cursor is a 400, not a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc
    if not isinstance(position, dict) or set(position) != expected_keys:
        raise BadRequest("The cursor is not one this API issued.")
    for value in position.values():
        # A forged cursor may carry text PostgreSQL cannot take (NUL, a lone surrogate).
        if isinstance(value, str) and not _storable(value):
            raise BadRequest("The cursor is not one this API issued.")
    return position


def _storable(value: str) -> bool:
    try:
        storable_text(value)
    except ValueError:
        return False
    return True


class Page(BaseModel, Generic[ItemT]):
    """A page of results; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[ItemT]
    next_cursor: str | None = Field(
        default=None, description="Opaque; absent on the last page.", examples=[None]
    )


def keyset_page(
    rows: Sequence[RowT],
    limit: int,
    item: Callable[[RowT], ItemT],
    cursor_after: Callable[[RowT], str],
) -> Page[ItemT]:
    """A page from ``limit + 1`` rows read in list order: the extra row, if there is
    one, only tells that a next page exists (its cursor points after the last item)."""
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursor_after(rows[-1])
    return Page(items=[item(row) for row in rows], next_cursor=next_cursor)


def encode_time_cursor(at: datetime, row_id: uuid.UUID, *, time_key: str = "at") -> str:
    """A cursor after the row ``(at, row_id)`` of a list ordered by a time, then id."""
    return encode_cursor({time_key: at.astimezone(UTC).isoformat(), "id": str(row_id)})


def cursor_instant(value: Any) -> datetime:
    """A date-time from a cursor: ISO 8601 with an offset, within the supported range
    (a forged one at the edge of the calendar would overflow once converted)."""
    try:
        at = datetime.fromisoformat(str(value))
        if at.tzinfo is None:
            raise ValueError("no offset")
        return in_supported_range(at)
    except ValueError as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc


def decode_time_cursor(cursor: str, *, time_key: str = "at") -> tuple[datetime, uuid.UUID]:
    position = decode_cursor(cursor, frozenset({time_key, "id"}))
    at = cursor_instant(position[time_key])
    try:
        row_id = uuid.UUID(str(position["id"]))
    except ValueError as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc
    return at, row_id


def encode_slot_cursor(start: datetime, slot_id: uuid.UUID) -> str:
    """A cursor over (slot start, slot id): slot lists and the availability search."""
    return encode_time_cursor(start, slot_id, time_key="start")


def decode_slot_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    return decode_time_cursor(cursor, time_key="start")
