"""What crosses the workflow boundary: inputs, messages, activity I/O and enums.

Everything here is a plain dataclass or enum so the default JSON converter handles
it, and every payload carries ids, times and enum codes only: free text and
personal data (the request's details, names, join links) stay in PostgreSQL, so
they never land in a workflow history. Durations travel as seconds because the
JSON converter has no ``timedelta`` support.

Only the standard library and ``temporalio`` may be imported here: the workflow
sandbox loads this module.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from booking.settings import Settings

WORKFLOW_NAME = "ConsultationWorkflow"
WORKFLOW_ID_PREFIX = "consultation-request-"


def workflow_id_for(request_id: uuid.UUID) -> str:
    """The one workflow id of a request: ``consultation-request-<uuid>``."""
    return f"{WORKFLOW_ID_PREFIX}{request_id}"


# --- vocabularies -----------------------------------------------------------------


class RequestStatus(StrEnum):
    """Mirrors ``db.statuses.RequestStatus`` (which the workflow may not import)."""

    PENDING_ASSIGNMENT = "pending_assignment"
    PENDING_CONFIRMATION = "pending_confirmation"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


FINAL_REQUEST_STATUSES = frozenset(
    {RequestStatus.COMPLETED, RequestStatus.CANCELLED, RequestStatus.REJECTED}
)


class SessionStatus(StrEnum):
    """Mirrors ``db.statuses.SessionStatus``."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED_BY_USER = "cancelled_by_user"
    CANCELLED_BY_CONSULTANT = "cancelled_by_consultant"
    CANCELLED = "cancelled"
    NO_SHOW_USER = "no_show_user"
    NO_SHOW_CONSULTANT = "no_show_consultant"


class Party(StrEnum):
    """Who acts on a request. ``SYSTEM`` is the workflow itself (compensation)."""

    REQUESTER = "requester"
    CONSULTANT = "consultant"
    OPERATOR = "operator"
    SYSTEM = "system"


class DeclineReason(StrEnum):
    UNAVAILABLE = "unavailable"
    OUTSIDE_EXPERTISE = "outside_expertise"
    SCHEDULE_CONFLICT = "schedule_conflict"
    OTHER = "other"


class CancellationReason(StrEnum):
    """Why a request or session was cancelled; a code, never free text."""

    CHANGE_OF_PLANS = "change_of_plans"
    SCHEDULE_CONFLICT = "schedule_conflict"
    ILLNESS = "illness"
    EMERGENCY = "emergency"
    NO_LONGER_NEEDED = "no_longer_needed"
    CONSULTANT_UNAVAILABLE = "consultant_unavailable"
    DUPLICATE_REQUEST = "duplicate_request"
    POLICY_VIOLATION = "policy_violation"
    MEETING_PLATFORM_FAILURE = "meeting_platform_failure"
    OTHER = "other"


class StatusReason(StrEnum):
    """``consultation_requests.status_reason``: why a request ended where it did."""

    NO_CONSULTANT_AVAILABLE = "no_consultant_available"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    CANCELLED_BY_REQUESTER = "cancelled_by_requester"
    CANCELLED_BY_CONSULTANT = "cancelled_by_consultant"
    CANCELLED_BY_OPERATOR = "cancelled_by_operator"
    MEETING_PLATFORM_FAILURE = "meeting_platform_failure"
    NO_SHOW_USER = "no_show_user"
    NO_SHOW_CONSULTANT = "no_show_consultant"


class ParticipantRole(StrEnum):
    LEARNER = "learner"
    CONSULTANT = "consultant"


class ReleaseOutcome(StrEnum):
    """Why a held slot goes back to ``available`` (decides the event and request status)."""

    DECLINED = "declined"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    HOLD_LOST = "hold_lost"
    RESCHEDULE_ABANDONED = "reschedule_abandoned"


class ErrorType(StrEnum):
    """``ApplicationError.type`` values callers (the API) map to responses."""

    INVALID_STATE = "InvalidState"
    NOT_ALLOWED = "NotAllowed"
    DEADLINE_PASSED = "DeadlinePassed"
    BUSY = "ChangeInProgress"
    SLOT_UNAVAILABLE = "SlotUnavailable"
    NO_FITTING_SLOT = "NoFittingSlot"
    HOLD_LOST = "HoldLost"
    INVALID_REQUEST = "InvalidRequest"
    DUPLICATE_IDEMPOTENCY_KEY = "DuplicateIdempotencyKey"
    MEETING_PLATFORM_REJECTED = "MeetingPlatformRejected"
    REQUEST_FINISHED = "RequestFinished"


class ActivityName(StrEnum):
    """Activities are referenced by name so no database or HTTP code is imported by
    the workflow; the implementations in ``activities/`` register under these names."""

    PERSIST_REQUEST = "consultation.persist_request"
    FIND_CANDIDATES = "consultation.find_candidates"
    HOLD_SLOT = "consultation.hold_slot"
    RELEASE_HOLD = "consultation.release_hold"
    REMIND_CONFIRMATION = "consultation.remind_confirmation"
    REJECT_REQUEST = "consultation.reject_request"
    CANCEL_REQUEST = "consultation.cancel_request"
    RESERVE = "session.reserve"
    CREATE_MEETING = "session.create_meeting"
    RESCHEDULE_MEETING = "session.reschedule_meeting"
    CANCEL_MEETING = "session.cancel_meeting"
    RESCHEDULE_SESSION = "session.reschedule"
    CANCEL_SESSION = "session.cancel"
    SEND_REMINDER = "session.send_reminder"
    START_SESSION = "session.start"
    COMPLETE_SESSION = "session.complete"
    MARK_NO_SHOW = "session.mark_no_show"


# --- workflow input -----------------------------------------------------------------


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


@dataclass(frozen=True, kw_only=True)
class LifecycleTimings:
    """Every duration of the process, copied from the settings at submission so a
    running workflow is not affected by a later configuration change."""

    confirmation_timeout_seconds: float
    confirmation_reminder_before_seconds: float
    assignment_retry_interval_seconds: float
    max_attempts: int
    minimum_notice_seconds: float
    hold_ttl_seconds: float
    reminder_offsets_seconds: tuple[float, ...]
    no_show_grace_seconds: float
    no_show_report_window_seconds: float
    requester_cancel_cutoff_seconds: float

    @classmethod
    def from_settings(
        cls, settings: Settings, *, confirmation_timeout_override: timedelta | None = None
    ) -> LifecycleTimings:
        """The service type's confirmation timeout, when it has one, wins."""
        timeout = confirmation_timeout_override or settings.confirmation_timeout
        return cls(
            confirmation_timeout_seconds=_seconds(timeout),
            confirmation_reminder_before_seconds=_seconds(settings.confirmation_reminder_before),
            assignment_retry_interval_seconds=_seconds(settings.assignment_retry_interval),
            max_attempts=settings.max_assignment_attempts,
            minimum_notice_seconds=_seconds(settings.minimum_notice),
            hold_ttl_seconds=_seconds(settings.hold_ttl),
            reminder_offsets_seconds=tuple(
                sorted((_seconds(offset) for offset in settings.reminder_offsets), reverse=True)
            ),
            no_show_grace_seconds=_seconds(settings.no_show_grace),
            no_show_report_window_seconds=_seconds(settings.no_show_report_window),
            requester_cancel_cutoff_seconds=_seconds(settings.requester_cancel_cutoff),
        )

    @property
    def confirmation_timeout(self) -> timedelta:
        return timedelta(seconds=self.confirmation_timeout_seconds)

    @property
    def confirmation_reminder_before(self) -> timedelta:
        return timedelta(seconds=self.confirmation_reminder_before_seconds)

    @property
    def assignment_retry_interval(self) -> timedelta:
        return timedelta(seconds=self.assignment_retry_interval_seconds)

    @property
    def minimum_notice(self) -> timedelta:
        return timedelta(seconds=self.minimum_notice_seconds)

    @property
    def hold_ttl(self) -> timedelta:
        return timedelta(seconds=self.hold_ttl_seconds)

    @property
    def reminder_offsets(self) -> list[timedelta]:
        return [timedelta(seconds=offset) for offset in self.reminder_offsets_seconds]

    @property
    def no_show_grace(self) -> timedelta:
        return timedelta(seconds=self.no_show_grace_seconds)

    @property
    def no_show_report_window(self) -> timedelta:
        return timedelta(seconds=self.no_show_report_window_seconds)

    @property
    def requester_cancel_cutoff(self) -> timedelta:
        return timedelta(seconds=self.requester_cancel_cutoff_seconds)


@dataclass(frozen=True, kw_only=True)
class ConsultationInput:
    """Start argument of one request's workflow.

    ``window_start``/``window_end`` bound when the session may take place (the API
    fills them from the preferred window, the requested slot, or the default window).
    ``idempotency_key`` is the client's key, kept for the unique (requester, key) row.
    ``details_staged`` says the API staged the request's details text under
    ``request_id`` for ``persist_request`` to move into the row (see ``activities``).
    """

    request_id: uuid.UUID
    requester_id: uuid.UUID
    service_type_id: uuid.UUID
    duration_minutes: int
    window_start: datetime
    window_end: datetime
    timings: LifecycleTimings
    requested_slot_id: uuid.UUID | None = None
    preferred_consultant_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    details_staged: bool = False

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


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
    party: Party
    actor_id: uuid.UUID
    slot_id: uuid.UUID


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


# --- activity inputs and outputs --------------------------------------------------------


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


@dataclass(frozen=True, kw_only=True)
class PersistedRequest:
    request_id: uuid.UUID
    requested_at: datetime
    status: RequestStatus


@dataclass(frozen=True, kw_only=True)
class FindCandidatesInput:
    """Rank consultants with a free slot fitting ``[not_before, window_end]``."""

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


@dataclass(frozen=True, kw_only=True)
class Candidate:
    consultant_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class CandidateList:
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, kw_only=True)
class AssignmentStep:
    """The request transition made together with a hold: ``pending_confirmation``."""

    attempt: int
    confirmation_deadline: datetime


@dataclass(frozen=True, kw_only=True)
class HoldSlotInput:
    """Hold ``slot_id`` for the request if it still fits the earliest start in
    ``[not_before, window_end]``; with ``assignment`` the request moves to
    ``pending_confirmation`` in the same transaction."""

    request_id: uuid.UUID
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    duration_minutes: int
    not_before: datetime
    window_end: datetime | None
    hold_expires_at: datetime
    assignment: AssignmentStep | None = None


@dataclass(frozen=True, kw_only=True)
class HoldResult:
    """``held`` is false when another request won the slot (or it no longer fits)."""

    held: bool
    start: datetime | None = None
    end: datetime | None = None


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
    request_id: uuid.UUID
    session_id: uuid.UUID
    start: datetime
    end: datetime


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
