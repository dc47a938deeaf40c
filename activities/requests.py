"""The ``consultation.*`` activities: a request from being stored to its booking or end.

Store it, find and rank the consultants who could take it, hold a slot while the
assigned consultant decides, give the slot back, remind, reject, cancel. Each
activity is one transaction with its outbox event and is idempotent: a retry after
a commit finds the row already moved (``db.transitions``) and the event already
there (its dedupe key).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import DATABASE_CONFLICT, SessionFactory, business_failure, transaction
from core.events import EventType
from core.vocabulary import ErrorType, RequestStatus
from db import requests
from db.availability import holds
from db.availability.candidates import policy_in_the_way, rank_candidates
from db.availability.holds import HeldTime
from db.availability.offer import WHOLE_MINUTES, Refusal, StartRules
from db.availability.policy import hold_policy
from db.drafts import take_details
from db.outbox import PayloadValue, emit
from db.requests import Fence
from db.transitions import transition_request
from workflows.contracts.activity_io import (
    AssignmentStep,
    CancelRequestInput,
    Candidate,
    CandidateList,
    ConfirmationReminderInput,
    FindCandidatesInput,
    HoldResult,
    HoldSlotInput,
    PersistedRequest,
    PersistRequestInput,
    RejectRequestInput,
    ReleaseHoldInput,
    ReleaseOutcome,
)
from workflows.contracts.names import ActivityName

WAITING = (RequestStatus.PENDING_ASSIGNMENT, RequestStatus.PENDING_CONFIRMATION)

_RELEASE_EVENTS = {
    ReleaseOutcome.DECLINED: EventType.CONSULTATION_DECLINED,
    ReleaseOutcome.CONFIRMATION_EXPIRED: EventType.CONSULTATION_CONFIRMATION_EXPIRED,
}


class RequestActivities:
    def __init__(
        self, session_factory: SessionFactory, *, stale_calendars_block: bool = False
    ) -> None:
        """``stale_calendars_block``: ``BOOKING_CALENDAR_STALE_BLOCKS_BOOKING``."""
        self._sessions = session_factory
        self._stale_calendars_block = stale_calendars_block

    @activity.defn(name=ActivityName.PERSIST_REQUEST)
    async def persist_request(self, arg: PersistRequestInput) -> PersistedRequest:
        async with transaction(self._sessions) as session:
            stored = await requests.stored_request(session, arg.request_id)
            if stored is not None:  # a retry returns what the first attempt stored
                return PersistedRequest(
                    request_id=arg.request_id,
                    requested_at=stored.requested_at,
                    status=stored.status,
                )
            if not await requests.service_type_is_active(session, arg.service_type_id):
                raise business_failure(
                    ErrorType.INVALID_REQUEST, "unknown or inactive service type"
                )
            over_cap = await _over_open_request_cap(session, arg)
            if over_cap is None:
                return await _store_request(session, arg)
            # Refused for good: the staged details go with it (committed here), so
            # no draft outlives a request that will never exist.
            if arg.details_staged:
                await take_details(
                    session, request_id=arg.request_id, requester_id=arg.requester_id
                )
        raise over_cap

    @activity.defn(name=ActivityName.FIND_CANDIDATES)
    async def find_candidates(self, arg: FindCandidatesInput) -> CandidateList:
        async with transaction(self._sessions) as session:
            own = await _own_hold(session, arg)
            if own is not None:
                return CandidateList(candidates=(own,))
            stale_block = self._stale_calendars_block
            ranked = await rank_candidates(session, arg, stale_calendars_block=stale_block)
            if not ranked and arg.only_consultant_id is not None:
                in_the_way = await policy_in_the_way(
                    session, arg, stale_calendars_block=stale_block
                )
                return CandidateList(
                    candidates=(), refusal=None if in_the_way is None else in_the_way.value
                )
            return CandidateList(candidates=tuple(Candidate(**fit._asdict()) for fit in ranked))

    @activity.defn(name=ActivityName.HOLD_SLOT)
    async def hold_slot(self, arg: HoldSlotInput) -> HoldResult:
        """Hold the slot; with an assignment, also move the request to
        ``pending_confirmation`` for that consultant, in the same transaction."""
        async with transaction(self._sessions) as session:
            step = arg.assignment
            fence = Fence.FRESH
            if step is not None:
                fence = await requests.fence_for_attempt(
                    session, arg.request_id, attempt=step.attempt, consultant_id=arg.consultant_id
                )
            if fence is Fence.STALE:
                return HoldResult(held=False)  # a stale attempt: the request moved on
            held = await holds.hold(
                session,
                slot_id=arg.slot_id,
                consultant_id=arg.consultant_id,
                request_id=arg.request_id,
                rules=StartRules(
                    duration=timedelta(minutes=arg.duration_minutes),
                    step_minutes=arg.start_interval_minutes or WHOLE_MINUTES,
                    not_before=arg.not_before,
                    ends_by=arg.window_end,
                ),
                start=arg.start,
                expires_at=arg.hold_expires_at,
                retrying=fence is Fence.RETRY,
                policy=await hold_policy(
                    session, request_id=arg.request_id, consultant_id=arg.consultant_id
                ),
                stale_calendars_block=self._stale_calendars_block,
            )
            if held is None:
                return HoldResult(held=False)
            if isinstance(held, Refusal):
                return HoldResult(held=False, refusal=held.value)
            if step is not None:
                await _assign(session, arg, step, held)
            return HoldResult(held=True, start=held.start, end=held.end, slot_id=held.slot_id)

    @activity.defn(name=ActivityName.RELEASE_HOLD)
    async def release_hold(self, arg: ReleaseHoldInput) -> None:
        async with transaction(self._sessions) as session:
            await holds.release(session, slot_id=arg.slot_id, request_id=arg.request_id)
            if arg.outcome is ReleaseOutcome.RESCHEDULE_ABANDONED:
                return  # the request keeps its booked session
            await requests.reopen_assignment(session, arg.request_id, arg.attempt)
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

    @activity.defn(name=ActivityName.REMIND_CONFIRMATION)
    async def remind_confirmation(self, arg: ConfirmationReminderInput) -> None:
        async with transaction(self._sessions) as session:
            if not await requests.awaits_confirmation(session, arg.request_id, arg.attempt):
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
            await holds.release_all(session, request_id)
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


async def _over_open_request_cap(
    session: AsyncSession, arg: PersistRequestInput
) -> ApplicationError | None:
    """The refusal when the learner has as many open requests as the cap allows.

    Checked where the request is stored, under a lock on the learner held until this
    transaction ends: concurrent submissions of one learner are counted one after
    another, so none can slip past a count taken before another one's insert."""
    cap = arg.open_request_cap
    if cap is None:
        return None
    await requests.lock_open_requests_of(session, arg.requester_id)
    open_requests = await requests.count_open_requests(session, arg.requester_id)
    if open_requests < cap:
        return None
    return ApplicationError(
        f"you already have {open_requests} open consultation requests (the limit is "
        f"{cap}); wait until one is completed, or cancel one",
        open_requests,
        cap,
        type=ErrorType.OPEN_REQUEST_LIMIT.value,
        non_retryable=True,
    )


async def _store_request(session: AsyncSession, arg: PersistRequestInput) -> PersistedRequest:
    """Insert the request with its staged details, and announce it."""
    details = None
    if arg.details_staged:
        details = await take_details(
            session, request_id=arg.request_id, requester_id=arg.requester_id
        )
        if details is None:
            # Never store the request without what the learner wrote: refuse it, so
            # the submit (if anyone still waits) and the workflow fail visibly.
            activity.logger.error("request %s: its staged details are gone", arg.request_id)
            raise business_failure(
                ErrorType.INVALID_REQUEST,
                "the request's details were no longer staged; submit it again",
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
            "requested_start": arg.requested_start,
            "window_start": arg.window_start,
            "window_end": arg.window_end,
        },
    )
    return PersistedRequest(
        request_id=arg.request_id,
        requested_at=requested_at,
        status=RequestStatus.PENDING_ASSIGNMENT,
    )


async def _insert_request(
    session: AsyncSession, arg: PersistRequestInput, details: str | None
) -> datetime:
    try:
        return await requests.insert_request(session, arg, details=details)
    except requests.IdempotencyKeyTakenError as taken:
        raise ApplicationError(
            "the idempotency key belongs to another request",
            str(taken.other_request_id),
            type=ErrorType.DUPLICATE_IDEMPOTENCY_KEY.value,
            non_retryable=True,
        ) from taken
    except requests.UnknownReferenceError as unknown:
        raise business_failure(
            ErrorType.INVALID_REQUEST, "unknown preferred consultant or requested slot"
        ) from unknown
    except IntegrityError as error:
        # Most likely a concurrent attempt stored the same request id first: a retry
        # finds its row and returns it.
        raise ApplicationError(
            f"could not store the request: {error.orig}", type=DATABASE_CONFLICT
        ) from error


async def _own_hold(session: AsyncSession, arg: FindCandidatesInput) -> Candidate | None:
    """The slot this request already holds while the row awaits a confirmation.

    The workflow only looks for candidates while it believes the request unassigned,
    so a hold here means the previous run of this very step committed but its result
    never reached the workflow's history (the worker died in between), and the step
    now runs again. The free-slot search cannot see a held slot, so without this the
    step would find other candidates (or none), whose holds the fence refuses as a
    different attempt: the request would be stuck with a hold nobody can confirm.
    """
    held = await holds.held_for_confirmation(session, arg.request_id)
    if held is None or held.consultant_id in arg.excluded_consultant_ids:
        return None
    if arg.only_consultant_id not in (None, held.consultant_id):
        return None
    start = max(held.session_start, arg.not_before)
    return Candidate(
        consultant_id=held.consultant_id,
        slot_id=held.slot_id,
        start=start,
        end=start + timedelta(minutes=arg.duration_minutes),
    )


async def _assign(
    session: AsyncSession, arg: HoldSlotInput, step: AssignmentStep, held: HeldTime
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
    await requests.note_assignment(session, arg.consultant_id)
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
        payload={**common, "slot_id": held.slot_id, "start": held.start, "end": held.end},
    )
    await emit(
        session,
        EventType.CONSULTATION_CONFIRMATION_REQUESTED,
        subject=arg.request_id,
        occurrence=(step.attempt,),
        request_id=arg.request_id,
        payload={**common, "confirmation_deadline": step.confirmation_deadline},
    )
