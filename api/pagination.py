"""Opaque keyset cursors: the client hands back what it got, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from api.errors import BadRequest
from api.schemas.fields import in_supported_range, storable_text

ItemT = TypeVar("ItemT")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


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


_TIME_CURSOR_KEYS = frozenset({"at", "id"})


def encode_time_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """A cursor after the row ``(at, row_id)`` of a list ordered by a time, then id."""
    return encode_cursor({"at": at.astimezone(UTC).isoformat(), "id": str(row_id)})


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


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    position = decode_cursor(cursor, _TIME_CURSOR_KEYS)
    at = cursor_instant(position["at"])
    try:
        row_id = uuid.UUID(str(position["id"]))
    except ValueError as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc
    return at, row_id
