"""Appending domain events to the outbox inside the transition's own transaction.

Each event has a ``dedupe_key`` naming the transition it records (request or session,
what happened, and which occurrence), and the insert does nothing when the key
exists: an activity retried after its commit, or a zombie attempt, emits nothing
twice. Payloads carry ids, times and enum codes only (also in nested objects, such
as a party's local times).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import TypeAlias

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.events import EventType
from db.models import DomainEvent

PayloadValue: TypeAlias = (
    uuid.UUID | datetime | Enum | str | int | float | bool | Mapping[str, "PayloadValue"] | None
)
JsonValue: TypeAlias = str | int | float | bool | dict[str, "JsonValue"] | None


def _json_value(value: PayloadValue) -> JsonValue:
    if isinstance(value, Mapping):
        return {name: _json_value(inner) for name, inner in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return value


def dedupe_key(event_type: EventType, subject: uuid.UUID, *occurrence: object) -> str:
    """``<event type>:<request or session id>[:<occurrence>...]``."""
    return ":".join([event_type.value, str(subject), *(str(part) for part in occurrence)])


async def emit(
    session: AsyncSession,
    event_type: EventType,
    *,
    subject: uuid.UUID,
    occurrence: tuple[object, ...] = (),
    request_id: uuid.UUID,
    session_id: uuid.UUID | None = None,
    payload: Mapping[str, PayloadValue] | None = None,
) -> bool:
    """Append the event unless its transition was recorded already; True if appended.

    The dedupe key is ``dedupe_key(event_type, subject, *occurrence)``: the request or
    session the transition happened to, and which occurrence of it (an attempt, a
    reminder offset), so a retry of the same transition finds its own event.
    """
    key = dedupe_key(event_type, subject, *occurrence)
    values = {name: _json_value(value) for name, value in (payload or {}).items()}
    statement = (
        insert(DomainEvent)
        .values(
            event_type=event_type.value,
            dedupe_key=key,
            consultation_request_id=request_id,
            scheduled_session_id=session_id,
            payload=values,
        )
        .on_conflict_do_nothing(index_elements=[DomainEvent.dedupe_key])
        .returning(DomainEvent.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None
