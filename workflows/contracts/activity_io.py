"""Each activity's input and output: what the workflow sends its activities and gets back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from core.vocabulary import (
    CancellationReason,
    DeclineReason,
    ParticipantRole,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)

if TYPE_CHECKING:
    from workflows.contracts.workflow_input import ConsultationInput


class ReleaseOutcome(StrEnum):
    """Why a held slot goes back to ``available`` (decides the event and request status)."""

    DECLINED = "declined"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    HOLD_LOST = "hold_lost"
    RESCHEDULE_ABANDONED = "reschedule_abandoned"
    # The consultant confirmed, but their calendar shows them busy then by now.
    CONSULTANT_BUSY = "consultant_busy"


@dataclass(frozen=True, kw_only=True)
class PersistRequestInput:
    request_id: uuid.UUID
    requester_id: uuid.UUID
    service_type_id: uuid.UUID
    window_start: datetime
    window_end: datetime
    requested_slot_id: uuid.UUID | None
    preferred_consultant_id: uuid.UUID | None
    company_id: uuid.UUID | None
    idempotency_key: str | None
    details_staged: bool
    open_request_cap: int | None = None
    requested_start: datetime | None = None
    learner_time_zone: str | None = None

    @classmethod
    def of(cls, request: ConsultationInput) -> PersistRequestInput:
        """What the workflow's input says of the row: each field of this input is the
        input's field of the same name."""
        return cls(**{field.name: getattr(request, field.name) for field in fields(cls)})


@dataclass(frozen=True, kw_only=True)
class PersistedRequest:
    request_id: uuid.UUID
    requested_at: datetime
    status: RequestStatus


@dataclass(frozen=True, kw_only=True)
class FindCandidatesInput:
    """Rank consultants with a free slot offering a start in ``[not_before,
    window_end]`` on a grid of ``start_interval_minutes`` (None: any whole minute)."""

    request_id: uuid.UUID
    service_type_id: uuid.UUID
    duration_minutes: int
    not_before: datetime
    window_end: datetime
    requested_slot_id: uuid.UUID | None = None
    preferred_consultant_id: uuid.UUID | None = None
    only_consultant_id: uuid.UUID | None = None
    excluded_consultant_ids: tuple[uuid.UUID, ...] = ()
    limit: int = 5
    start_interval_minutes: int | None = None


@dataclass(frozen=True, kw_only=True)
class Candidate:
    consultant_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class CandidateList:
    candidates: tuple[Candidate, ...]
    refusal: str | None = None
    """With no candidates for a request only one consultant may serve: the scheduling
    policy (a ``StartRefusal`` value) without which that consultant would fit."""


@dataclass(frozen=True, kw_only=True)
class AssignmentStep:
    """The request transition made together with a hold: ``pending_confirmation``."""

    attempt: int
    confirmation_deadline: datetime


@dataclass(frozen=True, kw_only=True)
class HoldSlotInput:
    """Hold exactly one session's time for the request: ``start`` (a start the
    learner chose, in ``slot_id`` or a piece carved from the same published slot) or
    else the earliest start ``slot_id`` offers in ``[not_before, window_end]``, on a
    grid of ``start_interval_minutes`` (None: any whole minute). With ``assignment``
    the request moves to ``pending_confirmation`` in the same transaction."""

    request_id: uuid.UUID
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    duration_minutes: int
    not_before: datetime
    window_end: datetime | None
    hold_expires_at: datetime
    assignment: AssignmentStep | None = None
    start: datetime | None = None
    start_interval_minutes: int | None = None


@dataclass(frozen=True, kw_only=True)
class HoldResult:
    """``held`` is false when another request won the slot (or it no longer fits).
    ``slot_id`` is the slot now held (exactly the session's time); None in results
    recorded before holds could move to a carved piece: the slot asked for."""

    held: bool
    start: datetime | None = None
    end: datetime | None = None
    slot_id: uuid.UUID | None = None
    refusal: str | None = None
    """Why the slot offered no start the rules admit (a ``Refusal`` of
    ``db.availability.offer``: ``daily_cap``, ``buffer``, …); None when it was taken."""


@dataclass(frozen=True, kw_only=True)
class ReleaseHoldInput:
    request_id: uuid.UUID
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    attempt: int
    outcome: ReleaseOutcome
    decline_reason: DeclineReason | None = None


@dataclass(frozen=True, kw_only=True)
class ConfirmationReminderInput:
    request_id: uuid.UUID
    consultant_id: uuid.UUID
    attempt: int
    confirmation_deadline: datetime


@dataclass(frozen=True, kw_only=True)
class RejectRequestInput:
    request_id: uuid.UUID
    reason: StatusReason


@dataclass(frozen=True, kw_only=True)
class CancelRequestInput:
    """Cancel before a session exists; releases any hold of the request."""

    request_id: uuid.UUID
    party: Party
    actor_id: uuid.UUID | None
    reason: CancellationReason | None
    status_reason: StatusReason


@dataclass(frozen=True, kw_only=True)
class ReserveInput:
    request_id: uuid.UUID
    session_id: uuid.UUID
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    requester_id: uuid.UUID
    service_type_id: uuid.UUID
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class ReservedSession:
    session_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class MeetingInput:
    """``deadline``: until when the workflow keeps retrying this call (``None`` from
    workflows that gave the platform a fixed number of attempts instead)."""

    request_id: uuid.UUID
    session_id: uuid.UUID
    start: datetime
    end: datetime
    deadline: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class MeetingCreated:
    """The join link stays in the database; only whether the platform will report
    attendance (and so whether automatic no-shows apply) comes back."""

    reports_attendance: bool


@dataclass(frozen=True, kw_only=True)
class MeetingRef:
    request_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class RescheduleSessionInput:
    request_id: uuid.UUID
    session_id: uuid.UUID
    from_slot_id: uuid.UUID
    to_slot_id: uuid.UUID
    start: datetime
    end: datetime
    party: Party


@dataclass(frozen=True, kw_only=True)
class CancelSessionInput:
    request_id: uuid.UUID
    session_id: uuid.UUID
    party: Party
    actor_id: uuid.UUID | None
    reason: CancellationReason | None
    session_status: SessionStatus
    status_reason: StatusReason


@dataclass(frozen=True, kw_only=True)
class SessionReminderInput:
    request_id: uuid.UUID
    session_id: uuid.UUID
    session_start: datetime
    offset_seconds: float


@dataclass(frozen=True, kw_only=True)
class Attendance:
    """What the meeting platform reported, persisted with the next transition."""

    meeting_started_at: datetime | None = None
    meeting_ended_at: datetime | None = None
    learner_joined_at: datetime | None = None
    consultant_joined_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class SessionTransitionInput:
    """``start_session`` / ``complete_session``: ``at`` is when it happened."""

    request_id: uuid.UUID
    session_id: uuid.UUID
    at: datetime
    attendance: Attendance


@dataclass(frozen=True, kw_only=True)
class NoShowInput:
    request_id: uuid.UUID
    session_id: uuid.UUID
    absent: ParticipantRole
    reported_by: Party
    actor_id: uuid.UUID | None
    attendance: Attendance
