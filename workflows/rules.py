"""Who may do what, when: the checks behind the workflow's update validators.

Pure functions of the workflow's state that raise a typed ``ApplicationError``;
a validator that raises rejects the update before it is written to history.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from core.vocabulary import (
    FINAL_REQUEST_STATUSES,
    CancellationReason,
    ErrorType,
    ParticipantRole,
    Party,
    RequestStatus,
    SessionStatus,
)
from workflows.contracts.messages import CancelRequest, NoShowReport, RescheduleRequest
from workflows.contracts.workflow_input import LifecycleTimings
from workflows.state import Booking, Hold, rejection


def require_open(status: RequestStatus, finished: bool) -> None:
    if finished or status in FINAL_REQUEST_STATUSES:
        raise rejection(ErrorType.INVALID_STATE, f"the request is {status.value}")


def check_decision(
    *,
    status: RequestStatus,
    hold: Hold | None,
    consultant_id: uuid.UUID,
    now: datetime,
    busy: bool,
) -> None:
    """Confirm or decline: only the assigned consultant, only before the deadline."""
    if status is not RequestStatus.PENDING_CONFIRMATION or hold is None:
        raise rejection(ErrorType.INVALID_STATE, f"the request is {status.value}, not awaiting")
    if consultant_id != hold.consultant_id:
        raise rejection(ErrorType.NOT_ALLOWED, "the request is assigned to someone else")
    if now >= hold.deadline:
        raise rejection(ErrorType.DEADLINE_PASSED, "the confirmation deadline has passed")
    if busy:
        raise rejection(ErrorType.BUSY, "the request is already being decided")


def check_cancel(
    message: CancelRequest,
    *,
    requester_id: uuid.UUID,
    booking: Booking | None,
    timings: LifecycleTimings,
    now: datetime,
) -> None:
    """The requester until the cutoff, the session's consultant with a reason (before
    a booking a consultant declines instead), an operator any time before the start,
    and the system when it erases a person (reason ``account_erased``), as an operator."""
    if booking is not None and booking.status is not SessionStatus.SCHEDULED:
        raise rejection(ErrorType.INVALID_STATE, f"the session is {booking.status.value}")
    if message.party is Party.REQUESTER:
        _require_requester(message.actor_id, requester_id)
        if booking is not None:
            _require_before_cutoff(booking, timings.requester_cancel_cutoff, now)
    elif message.party is Party.CONSULTANT:
        if booking is None or message.actor_id != booking.consultant_id:
            raise rejection(
                ErrorType.NOT_ALLOWED,
                "only the consultant of a scheduled session cancels it; decline instead",
            )
        if message.reason is None:
            raise rejection(ErrorType.INVALID_REQUEST, "a consultant must give a reason")
    elif message.party is Party.SYSTEM:
        if message.reason is not CancellationReason.ACCOUNT_ERASED:
            raise rejection(ErrorType.NOT_ALLOWED, "the system cancels only for an erasure")
    elif message.party is not Party.OPERATOR:
        raise rejection(ErrorType.NOT_ALLOWED, f"{message.party.value} cannot cancel")


def check_reschedule(
    message: RescheduleRequest,
    *,
    requester_id: uuid.UUID,
    booking: Booking | None,
    timings: LifecycleTimings,
    now: datetime,
) -> None:
    if booking is None or booking.status is not SessionStatus.SCHEDULED:
        raise rejection(ErrorType.INVALID_STATE, "only a scheduled session can be moved")
    if message.slot_id == booking.slot_id and message.start in (None, booking.start):
        # With another start, the slot names the published block to move within.
        raise rejection(ErrorType.INVALID_REQUEST, "the session already uses that slot")
    if message.party is Party.REQUESTER:
        _require_requester(message.actor_id, requester_id)
        _require_before_cutoff(booking, timings.requester_reschedule_cutoff, now)
    elif message.party is Party.CONSULTANT:
        if message.actor_id != booking.consultant_id:
            raise rejection(ErrorType.NOT_ALLOWED, "not the consultant of this session")
    elif message.party is not Party.OPERATOR:
        raise rejection(ErrorType.NOT_ALLOWED, f"{message.party.value} cannot reschedule")


def check_assign(*, status: RequestStatus, hold: Hold | None) -> None:
    """An operator assigns a request that is waiting for a consultant."""
    if status is not RequestStatus.PENDING_ASSIGNMENT or hold is not None:
        raise rejection(ErrorType.INVALID_STATE, f"the request is {status.value}, not waiting")


def check_no_show_report(
    message: NoShowReport,
    *,
    booking: Booking | None,
    timings: LifecycleTimings,
    now: datetime,
) -> None:
    """After the grace period and until the report window after the end closes: the
    consultant reports the learner, an operator either party."""
    if booking is None or booking.status not in (
        SessionStatus.IN_PROGRESS,
        SessionStatus.COMPLETED,
    ):
        raise rejection(ErrorType.INVALID_STATE, "no session that could have been missed")
    if now < booking.start + timings.no_show_grace:
        raise rejection(ErrorType.INVALID_STATE, "the grace period is not over yet")
    if now > report_window_end(booking, timings):
        raise rejection(ErrorType.DEADLINE_PASSED, "the no-show report window has closed")
    if message.party is Party.CONSULTANT:
        if message.actor_id != booking.consultant_id:
            raise rejection(ErrorType.NOT_ALLOWED, "not the consultant of this session")
        if message.absent is not ParticipantRole.LEARNER:
            raise rejection(ErrorType.NOT_ALLOWED, "a consultant reports the learner only")
    elif message.party is not Party.OPERATOR:
        raise rejection(ErrorType.NOT_ALLOWED, f"{message.party.value} cannot report")


def report_window_end(booking: Booking, timings: LifecycleTimings) -> datetime:
    return booking.end + timings.no_show_report_window


def _require_requester(actor_id: uuid.UUID, requester_id: uuid.UUID) -> None:
    if actor_id != requester_id:
        raise rejection(ErrorType.NOT_ALLOWED, "not the requester of this consultation")


def _require_before_cutoff(booking: Booking, cutoff: timedelta, now: datetime) -> None:
    if now > booking.start - cutoff:
        raise rejection(ErrorType.DEADLINE_PASSED, "too close to the session start to change it")
