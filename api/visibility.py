"""Who sees which consultation requests and sessions, as SQL conditions.

A learner sees their own, a consultant those assigned to them, an operator all; a
caller with several roles sees the union. Lists filter by these conditions and
single reads use them too, so someone else's request is a 404 exactly like a
missing one: its existence is not revealed.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, Role
from api.errors import NotFound
from db.models import ConsultationRequest, ScheduledSession

RowT = TypeVar("RowT", ConsultationRequest, ScheduledSession)


def visible_requests(principal: Principal) -> ColumnElement[bool]:
    if principal.is_operator:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if principal.has(Role.LEARNER):
        conditions.append(ConsultationRequest.requester_user_id == principal.user_id)
    if principal.has(Role.CONSULTANT):
        conditions.append(ConsultationRequest.assigned_consultant_user_id == principal.user_id)
    return or_(*conditions) if conditions else false()


def visible_sessions(principal: Principal) -> ColumnElement[bool]:
    if principal.is_operator:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if principal.has(Role.LEARNER):
        conditions.append(ScheduledSession.requester_user_id == principal.user_id)
    if principal.has(Role.CONSULTANT):
        conditions.append(ScheduledSession.consultant_user_id == principal.user_id)
    return or_(*conditions) if conditions else false()


def is_requester(principal: Principal, request: ConsultationRequest | ScheduledSession) -> bool:
    return principal.has(Role.LEARNER) and request.requester_user_id == principal.user_id


async def visible_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> ConsultationRequest:
    """The request if the caller may see it; otherwise 404, as if it did not exist."""
    return await _one_visible(
        session,
        ConsultationRequest,
        request_id,
        visible_requests(principal),
        f"Consultation request {request_id} does not exist.",
    )


async def visible_session(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID
) -> ScheduledSession:
    """The session if the caller may see it; otherwise 404, as if it did not exist."""
    return await _one_visible(
        session,
        ScheduledSession,
        session_id,
        visible_sessions(principal),
        f"Session {session_id} does not exist.",
    )


async def _one_visible(
    session: AsyncSession,
    model: type[RowT],
    row_id: uuid.UUID,
    visible: ColumnElement[bool],
    missing: str,
) -> RowT:
    row = await session.scalar(select(model).where(model.id == row_id, visible))
    if row is None:
        raise NotFound(missing)
    return row
