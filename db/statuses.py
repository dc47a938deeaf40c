"""Status vocabularies shared by the models, the API and the activities."""

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
        return self in _FINAL_REQUEST_STATUSES


_FINAL_REQUEST_STATUSES = frozenset(
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


def sql_in(values: type[StrEnum]) -> str:
    """``'a', 'b'`` for a CHECK constraint listing the allowed values."""
    return ", ".join(f"'{member.value}'" for member in values)
