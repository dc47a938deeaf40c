"""Field types for request bodies that accept exactly what their JSON schema says.

FastAPI validates a parsed JSON body in pydantic's lax Python mode, which would also
take ``0``/``"yes"`` for a boolean, ``"30"`` or ``true`` for an integer and a Unix time
for a date-time: requests the OpenAPI document calls invalid. Query parameters are
parsed the same way, so their date-times use these types too. These types refuse
them (422), and refuse text that PostgreSQL cannot store (a NUL character, a lone
surrogate) before it reaches the database as a 500.
"""

from __future__ import annotations

import re
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


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    """Dates and times are ISO 8601 strings; pydantic would read a number, or a string
    of one (``?to=0.5``), as a Unix time."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date or date-time, not a number")
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
JsonBool = Annotated[bool, Strict()]
JsonInt = Annotated[int, BeforeValidator(_a_number)]
IsoAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
IsoDate = Annotated[date, BeforeValidator(_not_a_number)]
IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]
