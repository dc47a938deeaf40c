"""Finding a consultant, holding their slot, and letting it go again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities import slots
from activities.candidates import rank_candidates
from activities.database import SessionFactory, transaction
from activities.events import emit
from activities.rows import transition_request
from core.events import EventType
from core.vocabulary import RequestStatus, SlotStatus
from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest
from workflows.contracts.activity_io import (
    AssignmentStep,
    Candidate,
    CandidateList,
    FindCandidatesInput,
    HoldResult,
    HoldSlotInput,
    ReleaseHoldInput,
    ReleaseOutcome,
)
from workflows.contracts.names import ActivityName

_RELEASE_EVENTS = {
    ReleaseOutcome.DECLINED: EventType.CONSULTATION_DECLINED,
    ReleaseOutcome.CONFIRMATION_EXPIRED: EventType.CONSULTATION_CONFIRMATION_EXPIRED,
}


class AssignmentActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name=ActivityName.FIND_CANDIDATES)
    async def find_candidates(self, arg: FindCandidatesInput) -> CandidateList:
        async with transaction(self._sessions) as session:
            own = await _own_hold(session, arg)
            if own is not None:
                return CandidateList(candidates=(own,))
            return CandidateList(candidates=tuple(await rank_candidates(session, arg)))

    @activity.defn(name=ActivityName.HOLD_SLOT)
    async def hold_slot(self, arg: HoldSlotInput) -> HoldResult:
        """Hold the slot; with an assignment, also move the request to
        ``pending_confirmation`` for that consultant, in the same transaction."""
        async with transaction(self._sessions) as session:
            step = arg.assignment
            fence = Fence.FRESH if step is None else await _check_fence(session, arg, step)
            if fence is Fence.STALE:
                return HoldResult(held=False)  # a stale attempt: the request moved on
            times = await slots.hold(
                session,
                slot_id=arg.slot_id,
                consultant_id=arg.consultant_id,
                request_id=arg.request_id,
                duration=timedelta(minutes=arg.duration_minutes),
                not_before=arg.not_before,
                window_end=arg.window_end,
                expires_at=arg.hold_expires_at,
                retrying=fence is Fence.RETRY,
            )
            if times is None:
                return HoldResult(held=False)
            start, end = times
            if step is not None:
                await _assign(session, arg, step, start, end)
            return HoldResult(held=True, start=start, end=end)

    @activity.defn(name=ActivityName.RELEASE_HOLD)
    async def release_hold(self, arg: ReleaseHoldInput) -> None:
        async with transaction(self._sessions) as session:
            await slots.release(session, slot_id=arg.slot_id, request_id=arg.request_id)
            if arg.outcome is ReleaseOutcome.RESCHEDULE_ABANDONED:
                return  # the request keeps its booked session
            request = ConsultationRequest
            await session.execute(
                update(request)
                .where(
                    request.id == arg.request_id,
                    request.status == RequestStatus.PENDING_CONFIRMATION.value,
                    request.attempts == arg.attempt,
                )
                .values(
                    status=RequestStatus.PENDING_ASSIGNMENT.value,
                    assigned_consultant_user_id=None,
                    confirmation_deadline=None,
                )
            )
            event_type = _RELEASE_EVENTS.get(arg.outcome)
            if event_type is not None:
                await emit(
                    session,
                    event_type,
                    subject=arg.request_id,
                    occurrence=(arg.attempt,),
                    request_id=arg.request_id,
                    payload={
                        "consultant_id": arg.consultant_id,
                        "attempt": arg.attempt,
                        "reason": arg.decline_reason,
                    },
                )


async def _own_hold(session: AsyncSession, arg: FindCandidatesInput) -> Candidate | None:
    """The slot this request already holds while the row awaits a confirmation.

    The workflow only looks for candidates while it believes the request unassigned,
    so a hold here means the previous run of this very step committed but its result
    never reached the workflow's history (the worker died in between), and the step
    now runs again. The free-slot search cannot see a held slot, so without this the
    step would find other candidates (or none), whose holds the fence refuses as a
    different attempt: the request would be stuck with a hold nobody can confirm.
    """
    request, slot = ConsultationRequest, AvailabilitySlot
    row = (
        await session.execute(
            select(slot.id, slot.consultant_user_id, slot.start_time)
            .join(request, request.id == slot.held_by_request_id)
            .where(
                request.id == arg.request_id,
                request.status == RequestStatus.PENDING_CONFIRMATION.value,
                slot.status == SlotStatus.HELD.value,
                slot.consultant_user_id == request.assigned_consultant_user_id,
            )
        )
    ).first()
    if row is None or row.consultant_user_id in arg.excluded_consultant_ids:
        return None
    if arg.only_consultant_id not in (None, row.consultant_user_id):
        return None
    start = max(row.start_time, arg.not_before)
    return Candidate(
        consultant_id=row.consultant_user_id,
        slot_id=row.id,
        start=start,
        end=start + timedelta(minutes=arg.duration_minutes),
    )


class Fence(Enum):
    FRESH = "fresh"  # the request waits for this attempt
    RETRY = "retry"  # this attempt already succeeded: only its own slot may match
    STALE = "stale"  # the request moved on (a zombie or late attempt)


async def _check_fence(session: AsyncSession, arg: HoldSlotInput, step: AssignmentStep) -> Fence:
    """The request row is the fence: locked, it admits one attempt at a time."""
    request = ConsultationRequest
    row = (
        await session.execute(
            select(request.status, request.attempts, request.assigned_consultant_user_id)
            .where(request.id == arg.request_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return Fence.STALE
    if row.status == RequestStatus.PENDING_ASSIGNMENT.value and row.attempts < step.attempt:
        return Fence.FRESH
    if (
        row.status == RequestStatus.PENDING_CONFIRMATION.value
        and row.attempts == step.attempt
        and row.assigned_consultant_user_id == arg.consultant_id
    ):
        return Fence.RETRY
    return Fence.STALE


async def _assign(
    session: AsyncSession, arg: HoldSlotInput, step: AssignmentStep, start: datetime, end: datetime
) -> None:
    await transition_request(
        session,
        arg.request_id,
        expected=(RequestStatus.PENDING_ASSIGNMENT,),
        target=RequestStatus.PENDING_CONFIRMATION,
        assigned_consultant_user_id=arg.consultant_id,
        attempts=step.attempt,
        confirmation_deadline=step.confirmation_deadline,
    )
    await session.execute(
        update(ConsultantProfile)
        .where(ConsultantProfile.consultant_user_id == arg.consultant_id)
        .values(last_assigned_at=func.now())
    )
    common: dict[str, uuid.UUID | int] = {
        "consultant_id": arg.consultant_id,
        "attempt": step.attempt,
    }
    await emit(
        session,
        EventType.CONSULTATION_ASSIGNED,
        subject=arg.request_id,
        occurrence=(step.attempt,),
        request_id=arg.request_id,
        payload={**common, "slot_id": arg.slot_id, "start": start, "end": end},
    )
    await emit(
        session,
        EventType.CONSULTATION_CONFIRMATION_REQUESTED,
        subject=arg.request_id,
        occurrence=(step.attempt,),
        request_id=arg.request_id,
        payload={**common, "confirmation_deadline": step.confirmation_deadline},
    )
