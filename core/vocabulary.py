"""The status and reason vocabulary of the whole service, defined once.

The database's CHECK constraints, the API's schemas, the activities and the workflow
all speak these enums. Only the standard library is imported here, so the workflow
sandbox can load this module as it is (passed through) and no layer has to keep a
copy of its own.
"""

from __future__ import annotations

from enum import StrEnum


class SlotStatus(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    BOOKED = "booked"
    UNAVAILABLE = "unavailable"


class RequestStatus(StrEnum):
    PENDING_ASSIGNMENT = "pending_assignment"
    PENDING_CONFIRMATION = "pending_confirmation"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in FINAL_REQUEST_STATUSES


FINAL_REQUEST_STATUSES = frozenset(
    {RequestStatus.COMPLETED, RequestStatus.CANCELLED, RequestStatus.REJECTED}
)


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED_BY_USER = "cancelled_by_user"
    CANCELLED_BY_CONSULTANT = "cancelled_by_consultant"
    # Not in the seed: cancelled by an operator or by the system (meeting platform failure).
    CANCELLED = "cancelled"
    NO_SHOW_USER = "no_show_user"
    NO_SHOW_CONSULTANT = "no_show_consultant"


class MeetingStatus(StrEnum):
    """Where a booked session's meeting stands on the meeting platform."""

    # Not created yet: the platform is being retried until the meeting deadline.
    PENDING = "pending"
    READY = "ready"
    # The session moved and the platform still has the meeting at the old time.
    NEEDS_UPDATE = "needs_update"


class DeliveryStatus(StrEnum):
    """The life of one outgoing webhook delivery (one event to one subscription)."""

    # Waiting for ``next_attempt_at`` (first try or a retry after backoff).
    PENDING = "pending"
    # Claimed by a dispatcher until ``locked_until``; a crashed one's claim lapses.
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    # Gave up after the maximum attempts; an operator may redeliver.
    PARKED = "parked"

    @property
    def is_unfinished(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)


class InboundEventState(StrEnum):
    """An inbound partner event: recorded before it is passed on, marked once it was."""

    # Recorded; passing it on has not succeeded yet (a redelivery passes it on again).
    RECEIVED = "received"
    DELIVERED = "delivered"


class Party(StrEnum):
    """Who acts on a request. ``SYSTEM`` is the workflow itself (compensation)."""

    REQUESTER = "requester"
    CONSULTANT = "consultant"
    OPERATOR = "operator"
    SYSTEM = "system"


class ParticipantRole(StrEnum):
    LEARNER = "learner"
    CONSULTANT = "consultant"


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
    OPEN_REQUEST_LIMIT = "OpenRequestLimit"


def no_show_status(absent: ParticipantRole) -> SessionStatus:
    """The session status that names who missed the session."""
    if absent is ParticipantRole.CONSULTANT:
        return SessionStatus.NO_SHOW_CONSULTANT
    return SessionStatus.NO_SHOW_USER


def no_show_reason(absent: ParticipantRole) -> StatusReason:
    """The request's status reason after a no-show (the request counts as completed)."""
    if absent is ParticipantRole.CONSULTANT:
        return StatusReason.NO_SHOW_CONSULTANT
    return StatusReason.NO_SHOW_USER
