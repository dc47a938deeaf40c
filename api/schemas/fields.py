"""Field types for request bodies that accept exactly what their JSON schema says.

FastAPI validates a parsed JSON body in pydantic's lax Python mode, which would also
take ``0``/``"yes"`` for a boolean, ``"30"`` or ``true`` for an integer and a Unix time
for a date-time: requests the OpenAPI document calls invalid. Query parameters are
parsed the same way, so their date-times use these types too. These types refuse
them (422), and refuse text that PostgreSQL cannot store (a NUL character, a lone
surrogate) before it reaches the database as a 500.

Date-times are bounded too (``EARLIEST``..``LATEST``): Python represents years 1 to
9999 only, so ``9999-12-31T23:00-05:00`` (year 10000 in UTC) or
``0001-01-01T00:00+01:00`` would overflow as soon as anything converts them to UTC or
adds a day. A booking service has no use for times that far out, and a bound with
millennia of margin keeps every conversion and window arithmetic safe.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Strict


def storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _a_number(value: Any) -> Any:
    """An integer is a JSON number (``30`` or ``30.0``), not ``"30"`` nor ``true``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    return value


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """Dates and times are ISO 8601 strings; pydantic would read a number, or a string
    of one (``?to=0.5``), as a Unix time."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date or date-time, not a number")
    return value


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_RANGE = f"between {EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)"


def in_supported_range(value: datetime) -> datetime:
    """``value`` if it lies within [EARLIEST, LATEST); a wall time without an offset is
    judged as if it were UTC. Comparing never converts, so it cannot overflow."""
    instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= instant < LATEST:
        raise ValueError(f"must be {_RANGE}")
    return value


def _date_in_supported_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be {_RANGE}")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
JsonBool = Annotated[bool, Strict()]
JSON_NUMBER = BeforeValidator(_a_number)
"""Put after an integer's bounds (``Annotated[int, Field(ge=…), JSON_NUMBER]``), so that
an optional bounded integer's schema keeps ``minimum``/``maximum``."""
JsonInt = Annotated[int, JSON_NUMBER]
IsoAwareDatetime = Annotated[
    AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(in_supported_range)
]
IsoDate = Annotated[date, BeforeValidator(_not_a_number), AfterValidator(_date_in_supported_range)]
IsoDatetime = Annotated[
    datetime, BeforeValidator(_not_a_number), AfterValidator(in_supported_range)
]
