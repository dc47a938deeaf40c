"""Request transitions up to the booking: store, remind, reject, cancel, reserve.

Each activity is one transaction with its outbox event and is idempotent: a retry
after a commit finds the row already moved (see ``activities.rows``) and the event
already there (its dedupe key).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slots
from activities.database import DATABASE_CONFLICT, SessionFactory, business_failure, transaction
from activities.drafts import take_details
from activities.events import PayloadValue, emit
from activities.rows import transition_request
from core.events import EventType
from core.vocabulary import ErrorType, RequestStatus, SessionStatus
from db.errors import FOREIGN_KEY_VIOLATION, constraint_name, sqlstate
from db.models import ConsultationRequest, ScheduledSession, ServiceType
from workflows.contracts.activity_io import (
    CancelRequestInput,
    ConfirmationReminderInput,
    PersistedRequest,
    PersistRequestInput,
    RejectRequestInput,
    ReservedSession,
    ReserveInput,
)
from workflows.contracts.names import ActivityName

IDEMPOTENCY_KEY_CONSTRAINT = "uq_consultation_requests_requester_user_id_idempotency_key"
WAITING = (RequestStatus.PENDING_ASSIGNMENT, RequestStatus.PENDING_CONFIRMATION)


class TransitionActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name=ActivityName.PERSIST_REQUEST)
    async def persist_request(self, arg: PersistRequestInput) -> PersistedRequest:
        async with transaction(self._sessions) as session:
            stored = await _stored_request(session, arg)
            if stored is not None:
                return stored
            active = await session.scalar(
                select(ServiceType.is_active).where(ServiceType.id == arg.service_type_id)
            )
            if not active:
                raise business_failure(
                    ErrorType.INVALID_REQUEST, "unknown or inactive service type"
                )
            details = None
            if arg.details_staged:
                details = await take_details(
                    session, request_id=arg.request_id, requester_id=arg.requester_id
                )
            requested_at = await _insert_request(session, arg, details)
            await emit(
                session,
                EventType.CONSULTATION_REQUESTED,
                subject=arg.request_id,
                request_id=arg.request_id,
                payload={
                    "requester_id": arg.requester_id,
                    "service_type_id": arg.service_type_id,
                    "preferred_consultant_id": arg.preferred_consultant_id,
                    "requested_slot_id": arg.requested_slot_id,
                    "window_start": arg.window_start,
                    "window_end": arg.window_end,
                },
            )
            return PersistedRequest(
                request_id=arg.request_id,
                requested_at=requested_at,
                status=RequestStatus.PENDING_ASSIGNMENT,
            )

    @activity.defn(name=ActivityName.REMIND_CONFIRMATION)
    async def remind_confirmation(self, arg: ConfirmationReminderInput) -> None:
        async with transaction(self._sessions) as session:
            request = ConsultationRequest
            still_waiting = await session.scalar(
                select(request.id).where(
                    request.id == arg.request_id,
                    request.status == RequestStatus.PENDING_CONFIRMATION.value,
                    request.attempts == arg.attempt,
                )
            )
            if still_waiting is None:
                return
            await emit(
                session,
                EventType.CONSULTATION_CONFIRMATION_REMINDER,
                subject=arg.request_id,
                occurrence=(arg.attempt,),
                request_id=arg.request_id,
                payload={
                    "consultant_id": arg.consultant_id,
                    "attempt": arg.attempt,
                    "confirmation_deadline": arg.confirmation_deadline,
                },
            )

    @activity.defn(name=ActivityName.REJECT_REQUEST)
    async def reject_request(self, arg: RejectRequestInput) -> None:
        await self._close_waiting_request(
            arg.request_id,
            RequestStatus.REJECTED,
            arg.reason.value,
            EventType.CONSULTATION_REJECTED,
            {"reason": arg.reason},
        )

    @activity.defn(name=ActivityName.CANCEL_REQUEST)
    async def cancel_request(self, arg: CancelRequestInput) -> None:
        """Cancel before any session exists; any held slot is given back."""
        await self._close_waiting_request(
            arg.request_id,
            RequestStatus.CANCELLED,
            arg.status_reason.value,
            EventType.CONSULTATION_CANCELLED,
            {
                "cancelled_by": arg.party,
                "actor_id": arg.actor_id,
                "reason": arg.reason,
                "status_reason": arg.status_reason,
            },
        )

    async def _close_waiting_request(
        self,
        request_id: uuid.UUID,
        target: RequestStatus,
        status_reason: str,
        event_type: EventType,
        payload: Mapping[str, PayloadValue],
    ) -> None:
        """End a request that has no session yet: give back any held slot, record the
        end and announce it, in one transaction."""
        async with transaction(self._sessions) as session:
            await slots.release_all(session, request_id)
            await transition_request(
                session,
                request_id,
                expected=WAITING,
                target=target,
                status_reason=status_reason,
                assigned_consultant_user_id=None,
                confirmation_deadline=None,
            )
            await emit(
                session, event_type, subject=request_id, request_id=request_id, payload=payload
            )

    @activity.defn(name=ActivityName.RESERVE)
    async def reserve(self, arg: ReserveInput) -> ReservedSession:
        """Hold becomes booking: carve the slot, create the session, schedule the request."""
        async with transaction(self._sessions) as session:
            existing = (
                await session.execute(
                    select(
                        ScheduledSession.id,
                        ScheduledSession.availability_slot_id,
                        ScheduledSession.scheduled_start_time,
                        ScheduledSession.scheduled_end_time,
                    ).where(ScheduledSession.consultation_request_id == arg.request_id)
                )
            ).one_or_none()
            if existing is not None and existing.availability_slot_id is not None:
                return ReservedSession(
                    session_id=existing.id,
                    slot_id=existing.availability_slot_id,
                    start=existing.scheduled_start_time,
                    end=existing.scheduled_end_time,
                )
            booked = await slots.book(
                session,
                slot_id=arg.slot_id,
                request_id=arg.request_id,
                start=arg.start,
                end=arg.end,
            )
            if not booked:
                raise business_failure(ErrorType.HOLD_LOST, "the request no longer holds the slot")
            await session.execute(
                insert(ScheduledSession).values(
                    id=arg.session_id,
                    consultation_request_id=arg.request_id,
                    requester_user_id=arg.requester_id,
                    consultant_user_id=arg.consultant_id,
                    consultation_service_type_id=arg.service_type_id,
                    availability_slot_id=arg.slot_id,
                    scheduled_start_time=arg.start,
                    scheduled_end_time=arg.end,
                    status=SessionStatus.SCHEDULED.value,
                )
            )
            await transition_request(
                session,
                arg.request_id,
                expected=(RequestStatus.PENDING_CONFIRMATION,),
                target=RequestStatus.SCHEDULED,
                scheduled_session_id=arg.session_id,
                confirmation_deadline=None,
            )
            await emit(
                session,
                EventType.SESSION_SCHEDULED,
                subject=arg.session_id,
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={
                    "requester_id": arg.requester_id,
                    "consultant_id": arg.consultant_id,
                    "service_type_id": arg.service_type_id,
                    "start": arg.start,
                    "end": arg.end,
                },
            )
            return ReservedSession(
                session_id=arg.session_id, slot_id=arg.slot_id, start=arg.start, end=arg.end
            )


async def _stored_request(
    session: AsyncSession, arg: PersistRequestInput
) -> PersistedRequest | None:
    """The row a previous attempt stored (a retry returns it unchanged)."""
    row = (
        await session.execute(
            select(ConsultationRequest.requested_at, ConsultationRequest.status).where(
                ConsultationRequest.id == arg.request_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return PersistedRequest(
        request_id=arg.request_id, requested_at=row.requested_at, status=RequestStatus(row.status)
    )


async def _insert_request(
    session: AsyncSession, arg: PersistRequestInput, details: str | None
) -> datetime:
    request = ConsultationRequest
    try:
        # A savepoint: after a constraint violation the transaction stays usable
        # for looking up the request that already uses the idempotency key.
        async with session.begin_nested():
            result = await session.execute(
                insert(request)
                .values(
                    id=arg.request_id,
                    requester_user_id=arg.requester_id,
                    company_id=arg.company_id,
                    consultation_service_type_id=arg.service_type_id,
                    preferred_consultant_user_id=arg.preferred_consultant_id,
                    preferred_start_time=arg.window_start,
                    preferred_end_time=arg.window_end,
                    requested_slot_id=arg.requested_slot_id,
                    idempotency_key=arg.idempotency_key,
                    request_details=details,
                    status=RequestStatus.PENDING_ASSIGNMENT.value,
                )
                .returning(request.requested_at)
            )
            requested_at: datetime = result.scalar_one()
            return requested_at
    except IntegrityError as error:
        raise await _refusal(session, arg, error) from error


async def _refusal(
    session: AsyncSession, arg: PersistRequestInput, error: IntegrityError
) -> ApplicationError:
    if constraint_name(error) == IDEMPOTENCY_KEY_CONSTRAINT:
        other = await session.scalar(
            select(ConsultationRequest.id).where(
                ConsultationRequest.requester_user_id == arg.requester_id,
                ConsultationRequest.idempotency_key == arg.idempotency_key,
            )
        )
        return ApplicationError(
            "the idempotency key belongs to another request",
            str(other),
            type=ErrorType.DUPLICATE_IDEMPOTENCY_KEY.value,
            non_retryable=True,
        )
    if sqlstate(error) == FOREIGN_KEY_VIOLATION:
        return business_failure(
            ErrorType.INVALID_REQUEST, "unknown preferred consultant or requested slot"
        )
    # Most likely a concurrent attempt stored the same request id first: a retry
    # finds its row and returns it.
    return ApplicationError(f"could not store the request: {error.orig}", type=DATABASE_CONFLICT)
