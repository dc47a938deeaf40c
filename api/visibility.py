"""Who sees which consultation requests and sessions, as SQL conditions.

A learner sees their own, a consultant those assigned to them, an operator all; a
caller with several roles sees the union. Lists filter by these conditions and
single reads use them too, so someone else's request is a 404 exactly like a
missing one: its existence is not revealed.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from api.auth import Principal, Role
from db.models import ConsultationRequest, ScheduledSession


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
