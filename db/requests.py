"""Statements on consultation request rows beyond their status transitions.

Only the request's workflow writes these rows (through its activities); the
statements here are what those activities need besides ``db.transitions``: storing
a new request, the fence that admits one assignment attempt at a time, and the
small reads that tell whether a step still applies.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import NamedTuple, Protocol

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.events import EventType
from core.vocabulary import RequestStatus
from db.errors import FOREIGN_KEY_VIOLATION, constraint_name, sqlstate
from db.models import ConsultantProfile, ConsultationRequest, DomainEvent, ServiceType

IDEMPOTENCY_KEY_CONSTRAINT = "uq_consultation_requests_requester_user_id_idempotency_key"

OPEN_REQUEST_STATUSES = tuple(status.value for status in RequestStatus if not status.is_final)

OPEN_REQUESTS_LOCK_CLASS = 0x0B0C_0001
"""First key of the two-key advisory lock on one learner's open requests (the second
is a hash of the learner id); arbitrary, but apart from any other advisory lock."""


class NewRequest(Protocol):
    """What a new request row is made of (the persisting activity's input has these)."""

    @property
    def request_id(self) -> uuid.UUID: ...
    @property
    def requester_id(self) -> uuid.UUID: ...
    @property
    def service_type_id(self) -> uuid.UUID: ...
    @property
    def window_start(self) -> datetime: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def requested_slot_id(self) -> uuid.UUID | None: ...
    @property
    def preferred_consultant_id(self) -> uuid.UUID | None: ...
    @property
    def company_id(self) -> uuid.UUID | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def requested_start(self) -> datetime | None: ...
    @property
    def learner_time_zone(self) -> str | None: ...


class StoredRequest(NamedTuple):
    requested_at: datetime
    status: RequestStatus


class IdempotencyKeyTakenError(Exception):
    """The requester already used the idempotency key for another request."""

    def __init__(self, other_request_id: uuid.UUID | None) -> None:
        super().__init__(f"the idempotency key belongs to request {other_request_id}")
        self.other_request_id = other_request_id


class UnknownReferenceError(Exception):
    """The preferred consultant or the requested slot does not exist."""


async def stored_request(session: AsyncSession, request_id: uuid.UUID) -> StoredRequest | None:
    row = (
        await session.execute(
            select(ConsultationRequest.requested_at, ConsultationRequest.status).where(
                ConsultationRequest.id == request_id
            )
        )
    ).one_or_none()
    return None if row is None else StoredRequest(row.requested_at, RequestStatus(row.status))


async def count_open_requests(session: AsyncSession, requester_id: uuid.UUID) -> int:
    """Requests of the learner not yet completed, cancelled or rejected."""
    counted = await session.scalar(
        select(func.count())
        .select_from(ConsultationRequest)
        .where(
            ConsultationRequest.requester_user_id == requester_id,
            ConsultationRequest.status.in_(OPEN_REQUEST_STATUSES),
        )
    )
    return counted or 0


async def lock_open_requests_of(session: AsyncSession, requester_id: uuid.UUID) -> None:
    """Serialise the transactions that store requests of one learner until they end,
    so a count of their open requests stays true until the new one is inserted."""
    await session.execute(
        select(
            func.pg_advisory_xact_lock(OPEN_REQUESTS_LOCK_CLASS, func.hashtext(str(requester_id)))
        )
    )


async def service_type_is_active(session: AsyncSession, service_type_id: uuid.UUID) -> bool:
    active = await session.scalar(
        select(ServiceType.is_active).where(ServiceType.id == service_type_id)
    )
    return bool(active)


async def insert_request(
    session: AsyncSession, request: NewRequest, *, details: str | None
) -> datetime:
    """Insert the request ``pending_assignment``; returns its ``requested_at``.

    Raises ``IdempotencyKeyTakenError`` or ``UnknownReferenceError`` for the two
    refusals a retry cannot change; any other integrity error propagates.
    """
    table = ConsultationRequest
    try:
        # A savepoint: after a constraint violation the transaction stays usable
        # for looking up the request that already uses the idempotency key.
        async with session.begin_nested():
            result = await session.execute(
                insert(table)
                .values(
                    id=request.request_id,
                    requester_user_id=request.requester_id,
                    company_id=request.company_id,
                    consultation_service_type_id=request.service_type_id,
                    preferred_consultant_user_id=request.preferred_consultant_id,
                    preferred_start_time=request.window_start,
                    preferred_end_time=request.window_end,
                    requested_slot_id=request.requested_slot_id,
                    requested_start_time=request.requested_start,
                    learner_time_zone=request.learner_time_zone,
                    idempotency_key=request.idempotency_key,
                    request_details=details,
                    status=RequestStatus.PENDING_ASSIGNMENT.value,
                )
                .returning(table.requested_at)
            )
            requested_at: datetime = result.scalar_one()
            return requested_at
    except IntegrityError as error:
        if constraint_name(error) == IDEMPOTENCY_KEY_CONSTRAINT:
            other = await session.scalar(
                select(table.id).where(
                    table.requester_user_id == request.requester_id,
                    table.idempotency_key == request.idempotency_key,
                )
            )
            raise IdempotencyKeyTakenError(other) from error
        if sqlstate(error) == FOREIGN_KEY_VIOLATION:
            raise UnknownReferenceError() from error
        raise


class Fence(Enum):
    """What the locked request row says of an assignment attempt."""

    FRESH = "fresh"  # the request waits for this attempt
    RETRY = "retry"  # this attempt already succeeded: only its own slot may match
    STALE = "stale"  # the request moved on (a zombie or late attempt)


async def fence_for_attempt(
    session: AsyncSession, request_id: uuid.UUID, *, attempt: int, consultant_id: uuid.UUID
) -> Fence:
    """The request row is the fence: locked, it admits one attempt at a time."""
    request = ConsultationRequest
    row = (
        await session.execute(
            select(request.status, request.attempts, request.assigned_consultant_user_id)
            .where(request.id == request_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return Fence.STALE
    if row.status == RequestStatus.PENDING_ASSIGNMENT.value and row.attempts < attempt:
        return Fence.FRESH
    if (
        row.status == RequestStatus.PENDING_CONFIRMATION.value
        and row.attempts == attempt
        and row.assigned_consultant_user_id == consultant_id
    ):
        return Fence.RETRY
    return Fence.STALE


async def note_assignment(session: AsyncSession, consultant_id: uuid.UUID) -> None:
    """Ranking prefers consultants assigned least recently."""
    await session.execute(
        update(ConsultantProfile)
        .where(ConsultantProfile.consultant_user_id == consultant_id)
        .values(last_assigned_at=func.now())
    )


async def awaits_confirmation(session: AsyncSession, request_id: uuid.UUID, attempt: int) -> bool:
    """Whether the request still waits for the answer of its attempt ``attempt``."""
    request = ConsultationRequest
    found = await session.scalar(
        select(request.id).where(
            request.id == request_id,
            request.status == RequestStatus.PENDING_CONFIRMATION.value,
            request.attempts == attempt,
        )
    )
    return found is not None


async def reopen_assignment(session: AsyncSession, request_id: uuid.UUID, attempt: int) -> None:
    """Back to ``pending_assignment`` after attempt ``attempt`` ended without a booking
    (nothing changes if the request has moved on since)."""
    request = ConsultationRequest
    await session.execute(
        update(request)
        .where(
            request.id == request_id,
            request.status == RequestStatus.PENDING_CONFIRMATION.value,
            request.attempts == attempt,
        )
        .values(
            status=RequestStatus.PENDING_ASSIGNMENT.value,
            assigned_consultant_user_id=None,
            confirmation_deadline=None,
        )
    )


async def was_offered_to(
    session: AsyncSession, request_id: uuid.UUID, consultant_id: uuid.UUID
) -> bool:
    """Whether the request was ever assigned to the consultant (its outbox says so).

    A consultant who was asked may still be told why a late answer is refused; to
    anyone else the request stays invisible.
    """
    event = DomainEvent
    offered = await session.scalar(
        select(
            exists().where(
                event.consultation_request_id == request_id,
                event.event_type == EventType.CONSULTATION_ASSIGNED.value,
                event.payload["consultant_id"].astext == str(consultant_id),
            )
        )
    )
    return bool(offered)
