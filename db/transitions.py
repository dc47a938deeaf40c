"""Conditional status changes of request and session rows.

A transition names the statuses it may start from; the ``UPDATE ... WHERE status IN
(...)`` is the guard. Finding the row already in the target status means a retried
attempt after its commit: nothing more to do. Any other status is unexpected (the
workflow is the only writer) and raised as ``UnexpectedRowState``, which activities
report as retryable, so an operator can repair the row and the workflow carries on,
instead of failing half way.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import RequestStatus, SessionStatus
from db.errors import UnexpectedRowState
from db.models import ConsultationRequest, ScheduledSession


async def transition_request(
    session: AsyncSession,
    request_id: uuid.UUID,
    *,
    expected: Collection[RequestStatus],
    target: RequestStatus,
    **values: Any,
) -> bool:
    """Move the request to ``target``; True if this call changed it."""
    return await _transition(
        session, ConsultationRequest, request_id, expected, target, values, "request"
    )


async def transition_session(
    session: AsyncSession,
    session_id: uuid.UUID,
    *,
    expected: Collection[SessionStatus],
    target: SessionStatus,
    **values: Any,
) -> bool:
    """Move the session to ``target``; True if this call changed it."""
    return await _transition(
        session, ScheduledSession, session_id, expected, target, values, "session"
    )


async def _transition(
    session: AsyncSession,
    table: type[ConsultationRequest | ScheduledSession],
    row_id: uuid.UUID,
    expected: Collection[StrEnum],
    target: StrEnum,
    values: dict[str, Any],
    what: str,
) -> bool:
    changed = (
        await session.execute(
            update(table)
            .where(table.id == row_id, table.status.in_([s.value for s in expected]))
            .values(status=target.value, **values)
            .returning(table.id)
        )
    ).first()
    if changed is not None:
        return True
    current = await session.scalar(select(table.status).where(table.id == row_id))
    if current != target.value:
        raise UnexpectedRowState(
            f"{what} {row_id} is {current or 'missing'}, cannot become {target.value}"
        )
    return False
