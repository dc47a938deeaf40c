"""Field types for request bodies that accept exactly what their JSON schema says.

FastAPI validates a parsed JSON body in pydantic's lax Python mode, which would also
take ``0``/``"yes"`` for a boolean, ``"30"`` or ``true`` for an integer and a Unix time
number for a date-time: requests the OpenAPI document calls invalid. These types refuse
them (422), and refuse text that PostgreSQL cannot store (a NUL character, a lone
surrogate) before it reaches the database as a 500.
"""

from __future__ import annotations

from datetime import date, datetime
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


def _not_a_number(value: Any) -> Any:
    """Dates and times are ISO 8601 strings in JSON; a number is not one."""
    if isinstance(value, int | float) and not isinstance(value, datetime | date):
        raise ValueError("expected an ISO 8601 string, not a number")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
JsonBool = Annotated[bool, Strict()]
JsonInt = Annotated[int, BeforeValidator(_a_number)]
JsonAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
JsonDate = Annotated[date, BeforeValidator(_not_a_number)]
JsonDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]
