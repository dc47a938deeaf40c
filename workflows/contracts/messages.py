"""The workflow's updates and signals, and the details its updates and query answer with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from core.vocabulary import (
    CancellationReason,
    DeclineReason,
    MeetingStatus,
    ParticipantRole,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)

# --- updates and signals --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    """Argument of the ``submit`` update (update-with-start); all data is in the input."""


@dataclass(frozen=True, kw_only=True)
class ConfirmRequest:
    consultant_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class DeclineRequest:
    consultant_id: uuid.UUID
    reason: DeclineReason


@dataclass(frozen=True, kw_only=True)
class CancelRequest:
    """``reason`` is required from a consultant; others may omit it."""

    party: Party
    actor_id: uuid.UUID
    reason: CancellationReason | None = None


@dataclass(frozen=True, kw_only=True)
class RescheduleRequest:
    """Move to ``start`` in ``slot_id`` (or a piece carved from the same published
    slot); without a start, to the earliest start the slot offers."""

    party: Party
    actor_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AssignRequest:
    """An operator's choice of consultant (optionally of the slot) for a request
    that is waiting for assignment."""

    operator_id: uuid.UUID
    consultant_id: uuid.UUID
    slot_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class NoShowReport:
    party: Party
    actor_id: uuid.UUID
    absent: ParticipantRole


@dataclass(frozen=True, kw_only=True)
class MeetingStarted:
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class ParticipantJoined:
    role: ParticipantRole
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class ParticipantLeft:
    role: ParticipantRole
    occurred_at: datetime


@dataclass(frozen=True, kw_only=True)
class MeetingEnded:
    occurred_at: datetime


# --- query / update result ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RequestDetails:
    """The live state of a request, as the workflow sees it (query and update result)."""

    request_id: uuid.UUID
    status: RequestStatus
    status_reason: StatusReason | None = None
    requested_at: datetime | None = None
    attempt: int = 0
    max_attempts: int = 0
    assigned_consultant_id: uuid.UUID | None = None
    held_slot_id: uuid.UUID | None = None
    confirmation_deadline: datetime | None = None
    next_assignment_retry_at: datetime | None = None
    assignment_closes_at: datetime | None = None
    session_id: uuid.UUID | None = None
    session_status: SessionStatus | None = None
    session_start: datetime | None = None
    session_end: datetime | None = None
    meeting_ready: bool = False
    finished_at: datetime | None = None
    meeting_status: MeetingStatus | None = None
    # While the meeting is pending: when the session is cancelled without one.
    meeting_deadline: datetime | None = None
