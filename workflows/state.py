"""The workflow's in-memory state: the slot on hold, the booked session, and the
updates accepted but not yet acted on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from temporalio.exceptions import ActivityError, ApplicationError

from core.vocabulary import ErrorType, MeetingStatus, SessionStatus
from workflows.contracts.messages import RequestDetails

MessageT = TypeVar("MessageT")


def rejection(error_type: ErrorType, message: str) -> ApplicationError:
    """A business refusal: typed so callers map it without parsing the message."""
    return ApplicationError(message, type=error_type.value, non_retryable=True)


ACTIVITY_FAILURES = (ActivityError, ApplicationError)
"""How a failed activity surfaces in the workflow: an ordinary activity as an
``ActivityError`` wrapping its cause, a local one as the error it raised."""


def business_error(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """The activity's own typed failure, if that is what ended it."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


@dataclass
class Hold:
    """A slot held for the current attempt while its consultant decides."""

    consultant_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    deadline: datetime


@dataclass
class Booking:
    """The session booked for the request, as the workflow tracks it."""

    session_id: uuid.UUID
    consultant_id: uuid.UUID
    slot_id: uuid.UUID
    start: datetime
    end: datetime
    status: SessionStatus = SessionStatus.SCHEDULED
    meeting_ready: bool = False
    reports_attendance: bool = False
    reminders: list[tuple[float, datetime]] = field(default_factory=list)
    no_show_checked: bool = False
    # Set while the meeting is retried in the background (see ``workflows.meeting_call``):
    # a session still without a meeting at this moment is cancelled.
    meeting_deadline: datetime | None = None
    # The session moved and the platform still has the meeting at the old time.
    meeting_outdated: bool = False

    @property
    def meeting_status(self) -> MeetingStatus:
        if not self.meeting_ready:
            return MeetingStatus.PENDING
        return MeetingStatus.NEEDS_UPDATE if self.meeting_outdated else MeetingStatus.READY


class Pending(Generic[MessageT]):
    """An accepted update. Its handler only records it here and waits: the main loop
    is the single place that changes the request, so handlers never interleave
    their own activity calls (no lock needed) and every transition happens at a
    point where the loop knows the whole state."""

    def __init__(self, message: MessageT) -> None:
        self.message = message
        self.result: RequestDetails | None = None
        self.error: ApplicationError | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def resolve(self, details: RequestDetails) -> None:
        if not self.done:
            self.result = details

    def fail(self, error: ApplicationError) -> None:
        if not self.done:
            self.error = error

    def outcome(self) -> RequestDetails:
        if self.error is not None:
            raise self.error
        assert self.result is not None, "outcome() before the pending update was decided"
        return self.result
