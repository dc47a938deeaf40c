"""The catalogue of domain event types: what the outbox records and subscribers receive.

One vocabulary for the activities that append events, the feed and webhook filters,
so a subscription can only name an event that can actually happen.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CONSULTATION_REQUESTED = "consultation.requested"
    CONSULTATION_ASSIGNED = "consultation.assigned"
    CONSULTATION_CONFIRMATION_REQUESTED = "consultation.confirmation_requested"
    # Sent to the assigned consultant before the confirmation deadline.
    CONSULTATION_CONFIRMATION_REMINDER = "consultation.confirmation_reminder"
    CONSULTATION_DECLINED = "consultation.declined"
    CONSULTATION_CONFIRMATION_EXPIRED = "consultation.confirmation_expired"
    CONSULTATION_REJECTED = "consultation.rejected"
    CONSULTATION_CANCELLED = "consultation.cancelled"
    SESSION_SCHEDULED = "session.scheduled"
    SESSION_MEETING_READY = "session.meeting_ready"
    # The meeting platform failed to create the meeting; it is retried until the
    # meeting deadline, and the session stays scheduled meanwhile.
    SESSION_MEETING_PENDING = "session.meeting_pending"
    SESSION_RESCHEDULED = "session.rescheduled"
    SESSION_REMINDER = "session.reminder"
    SESSION_STARTED = "session.started"
    SESSION_COMPLETED = "session.completed"
    SESSION_NO_SHOW = "session.no_show"
    SESSION_CANCELLED = "session.cancelled"


ALL_EVENT_TYPES: frozenset[str] = frozenset(member.value for member in EventType)
