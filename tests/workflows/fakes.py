"""In-memory stand-ins for the consultation activities, registered under the real
activity names so the workflow under test cannot tell the difference."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.vocabulary import ErrorType, RequestStatus
from workflows.contracts.activity_io import (
    CancelRequestInput,
    CancelSessionInput,
    Candidate,
    CandidateList,
    ConfirmationReminderInput,
    FindCandidatesInput,
    HoldResult,
    HoldSlotInput,
    MeetingCreated,
    MeetingInput,
    MeetingRef,
    NoShowInput,
    PersistedRequest,
    PersistRequestInput,
    RejectRequestInput,
    ReleaseHoldInput,
    RescheduleSessionInput,
    ReservedSession,
    ReserveInput,
    SessionReminderInput,
    SessionTransitionInput,
)
from workflows.contracts.names import ActivityName

Clock = Callable[[], Awaitable[datetime]]


@dataclass(frozen=True)
class Call:
    name: str
    arg: Any
    at: datetime


@dataclass
class FakeBooking:
    """Scriptable backend: which consultants have which slots, which slots another
    request wins between ranking and holding, whether storing the request fails,
    whether the meeting platform refuses for good (``meeting_fails``) or is down
    until some moment (``platform_down_until``); records every call with the
    (possibly skipped) server time at which it ran."""

    clock: Clock
    candidates: list[Candidate] = field(default_factory=list)
    lost_slots: set[uuid.UUID] = field(default_factory=set)
    carved_pieces: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """Slot asked for → the piece a hold ends up in (another request carved it)."""
    persist_error: ErrorType | None = None
    policy_refusal: str | None = None
    """What a search for one consultant with no candidates says stood in the way."""
    busy_at_confirm: set[uuid.UUID] = field(default_factory=set)
    """Slots whose booking finds the consultant's calendar busy (an event found since
    the hold); the search offers them no more after that."""
    meeting_fails: bool = False
    platform_down_until: datetime | None = None
    reports_attendance: bool = False
    calls: list[Call] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.persist_request,
            self.find_candidates,
            self.hold_slot,
            self.release_hold,
            self.remind_confirmation,
            self.reject_request,
            self.cancel_request,
            self.reserve,
            self.create_meeting,
            self.reschedule_meeting,
            self.cancel_meeting,
            self.reschedule_session,
            self.cancel_session,
            self.send_reminder,
            self.start_session,
            self.complete_session,
            self.mark_no_show,
        ]

    def named(self, name: ActivityName) -> list[Call]:
        return [call for call in self.calls if call.name == name]

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    async def _record(self, name: ActivityName, arg: Any) -> None:
        self.calls.append(Call(name=name, arg=arg, at=await self.clock()))

    async def _platform_outage(self) -> None:
        """Fail as an unreachable platform does (worth a retry) while it is down."""
        down_until = self.platform_down_until
        if down_until is not None and await self.clock() < down_until:
            raise ApplicationError("the platform is down", type="MeetingPlatformUnavailable")

    @activity.defn(name=ActivityName.PERSIST_REQUEST)
    async def persist_request(self, arg: PersistRequestInput) -> PersistedRequest:
        await self._record(ActivityName.PERSIST_REQUEST, arg)
        if self.persist_error is not None:
            raise ApplicationError(
                "refused by the fake", type=self.persist_error, non_retryable=True
            )
        return PersistedRequest(
            request_id=arg.request_id,
            requested_at=await self.clock(),
            status=RequestStatus.PENDING_ASSIGNMENT,
        )

    @activity.defn(name=ActivityName.FIND_CANDIDATES)
    async def find_candidates(self, arg: FindCandidatesInput) -> CandidateList:
        await self._record(ActivityName.FIND_CANDIDATES, arg)
        found = [
            candidate
            for candidate in self.candidates
            if candidate.consultant_id not in arg.excluded_consultant_ids
            and arg.only_consultant_id in (None, candidate.consultant_id)
            and arg.requested_slot_id in (None, candidate.slot_id)
        ]
        if not found and arg.only_consultant_id is not None:
            return CandidateList(candidates=(), refusal=self.policy_refusal)
        return CandidateList(candidates=tuple(found[: arg.limit]))

    @activity.defn(name=ActivityName.HOLD_SLOT)
    async def hold_slot(self, arg: HoldSlotInput) -> HoldResult:
        await self._record(ActivityName.HOLD_SLOT, arg)
        slot = next((c for c in self.candidates if c.slot_id == arg.slot_id), None)
        if slot is None or arg.slot_id in self.lost_slots:
            return HoldResult(held=False)
        start = arg.start or max(slot.start, arg.not_before)
        return HoldResult(
            held=True,
            start=start,
            end=start + timedelta(minutes=arg.duration_minutes),
            slot_id=self.carved_pieces.get(arg.slot_id),
        )

    @activity.defn(name=ActivityName.RELEASE_HOLD)
    async def release_hold(self, arg: ReleaseHoldInput) -> None:
        await self._record(ActivityName.RELEASE_HOLD, arg)

    @activity.defn(name=ActivityName.REMIND_CONFIRMATION)
    async def remind_confirmation(self, arg: ConfirmationReminderInput) -> None:
        await self._record(ActivityName.REMIND_CONFIRMATION, arg)

    @activity.defn(name=ActivityName.REJECT_REQUEST)
    async def reject_request(self, arg: RejectRequestInput) -> None:
        await self._record(ActivityName.REJECT_REQUEST, arg)

    @activity.defn(name=ActivityName.CANCEL_REQUEST)
    async def cancel_request(self, arg: CancelRequestInput) -> None:
        await self._record(ActivityName.CANCEL_REQUEST, arg)

    @activity.defn(name=ActivityName.RESERVE)
    async def reserve(self, arg: ReserveInput) -> ReservedSession:
        await self._record(ActivityName.RESERVE, arg)
        if arg.slot_id in self.busy_at_confirm:
            self.candidates = [c for c in self.candidates if c.slot_id != arg.slot_id]
            raise ApplicationError(
                "the consultant's calendar shows them busy then",
                type=ErrorType.CONSULTANT_BUSY,
                non_retryable=True,
            )
        return ReservedSession(
            session_id=arg.session_id, slot_id=arg.slot_id, start=arg.start, end=arg.end
        )

    @activity.defn(name=ActivityName.CREATE_MEETING)
    async def create_meeting(self, arg: MeetingInput) -> MeetingCreated:
        await self._record(ActivityName.CREATE_MEETING, arg)
        await self._platform_outage()
        if self.meeting_fails:
            raise ApplicationError(
                "the platform refused the meeting",
                type=ErrorType.MEETING_PLATFORM_REJECTED,
                non_retryable=True,
            )
        return MeetingCreated(reports_attendance=self.reports_attendance)

    @activity.defn(name=ActivityName.RESCHEDULE_MEETING)
    async def reschedule_meeting(self, arg: MeetingInput) -> None:
        await self._record(ActivityName.RESCHEDULE_MEETING, arg)
        await self._platform_outage()

    @activity.defn(name=ActivityName.CANCEL_MEETING)
    async def cancel_meeting(self, arg: MeetingRef) -> None:
        await self._record(ActivityName.CANCEL_MEETING, arg)

    @activity.defn(name=ActivityName.RESCHEDULE_SESSION)
    async def reschedule_session(self, arg: RescheduleSessionInput) -> None:
        await self._record(ActivityName.RESCHEDULE_SESSION, arg)

    @activity.defn(name=ActivityName.CANCEL_SESSION)
    async def cancel_session(self, arg: CancelSessionInput) -> None:
        await self._record(ActivityName.CANCEL_SESSION, arg)

    @activity.defn(name=ActivityName.SEND_REMINDER)
    async def send_reminder(self, arg: SessionReminderInput) -> None:
        await self._record(ActivityName.SEND_REMINDER, arg)

    @activity.defn(name=ActivityName.START_SESSION)
    async def start_session(self, arg: SessionTransitionInput) -> None:
        await self._record(ActivityName.START_SESSION, arg)

    @activity.defn(name=ActivityName.COMPLETE_SESSION)
    async def complete_session(self, arg: SessionTransitionInput) -> None:
        await self._record(ActivityName.COMPLETE_SESSION, arg)

    @activity.defn(name=ActivityName.MARK_NO_SHOW)
    async def mark_no_show(self, arg: NoShowInput) -> None:
        await self._record(ActivityName.MARK_NO_SHOW, arg)


def candidate(start: datetime, *, minutes: int = 60) -> Candidate:
    """A fresh consultant with one free slot starting at ``start``."""
    return Candidate(
        consultant_id=uuid.uuid4(),
        slot_id=uuid.uuid4(),
        start=start,
        end=start + timedelta(minutes=minutes),
    )
