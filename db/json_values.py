"""Column values as JSON (ids and times as strings), for the audit trail and exports."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from enum import Enum
from typing import Any

from db.base import Base

JsonValue = str | int | float | bool | None | list[Any] | dict[str, Any]


def json_value(value: Any) -> JsonValue:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_value(value.value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def row_as_json(row: Base, *, leave_out: Collection[str] = ()) -> dict[str, JsonValue]:
    """Every column of ``row`` (by attribute name) but those left out."""
    mapper = row.__mapper__
    return {
        attribute.key: json_value(getattr(row, attribute.key))
        for attribute in mapper.column_attrs
        if attribute.key not in leave_out
    }
