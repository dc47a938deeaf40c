"""Who sees which consultation requests and sessions, as SQL conditions.

A learner sees their own, a consultant those assigned to them, an operator all; a
caller with several roles sees the union. Lists filter by these conditions and
single reads use them too, so someone else's request is a 404 exactly like a
missing one: its existence is not revealed.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api.auth import Principal, Role
from api.errors import NotFound
from db.models import ConsultationRequest, ScheduledSession

RowT = TypeVar("RowT", ConsultationRequest, ScheduledSession)

_PARTIES: dict[type[Any], tuple[InstrumentedAttribute[uuid.UUID], InstrumentedAttribute[Any], str]]
_PARTIES = {
    ConsultationRequest: (
        ConsultationRequest.requester_user_id,
        ConsultationRequest.assigned_consultant_user_id,
        "Consultation request",
    ),
    ScheduledSession: (
        ScheduledSession.requester_user_id,
        ScheduledSession.consultant_user_id,
        "Session",
    ),
}
"""Per table: the learner's column, the consultant's column, what a row is called."""


def visible_to(principal: Principal, model: type[RowT]) -> ColumnElement[bool]:
    """The rows of ``model`` (requests or sessions) the caller may see."""
    if principal.is_operator:
        return true()
    learner, consultant, _ = _PARTIES[model]
    conditions: list[ColumnElement[bool]] = []
    if principal.has(Role.LEARNER):
        conditions.append(learner == principal.user_id)
    if principal.has(Role.CONSULTANT):
        conditions.append(consultant == principal.user_id)
    return or_(*conditions) if conditions else false()


async def visible_row(
    session: AsyncSession, principal: Principal, model: type[RowT], row_id: uuid.UUID
) -> RowT:
    """The request or session if the caller may see it; otherwise 404, as if it did
    not exist."""
    row = await session.scalar(
        select(model).where(model.id == row_id, visible_to(principal, model))
    )
    if row is None:
        raise NotFound(f"{_PARTIES[model][2]} {row_id} does not exist.")
    return row


def is_requester(principal: Principal, request: ConsultationRequest | ScheduledSession) -> bool:
    return principal.has(Role.LEARNER) and request.requester_user_id == principal.user_id
