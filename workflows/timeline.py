"""Pure time arithmetic of the consultation process (no Temporal calls, unit-testable)."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.vocabulary import CancellationReason, ParticipantRole, Party, SessionStatus, StatusReason
from workflows.contracts.activity_io import Attendance
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings

HOLD_MARGIN = timedelta(hours=1)
"""How long a hold outlives its confirmation deadline, so the reservation that follows
a last-second confirmation still finds the slot held."""


def ceil_to_minute(moment: datetime) -> datetime:
    """Session starts computed from "now" land on whole minutes."""
    floored = moment.replace(second=0, microsecond=0)
    return floored if floored == moment else floored + timedelta(minutes=1)


def earliest_start(now: datetime, window_start: datetime, notice: timedelta) -> datetime:
    """The first start a booking may have: inside the window and after the notice."""
    return max(window_start, ceil_to_minute(now + notice))


def assignment_closes_at(request: ConsultationInput) -> datetime:
    """After this instant no slot in the window can satisfy the minimum notice."""
    return request.window_end - request.duration - request.timings.minimum_notice


def confirmation_deadline(now: datetime, start: datetime, timings: LifecycleTimings) -> datetime:
    """The consultant answers within the timeout and before the minimum notice."""
    return min(now + timings.confirmation_timeout, start - timings.minimum_notice)


def hold_expiry(now: datetime, deadline: datetime | None, timings: LifecycleTimings) -> datetime:
    """A hold lapses on its own (for a sweeper, or a stolen-slot check) if its
    workflow vanished; a live workflow always releases or books it before then."""
    expiry = now + timings.hold_ttl
    return expiry if deadline is None else max(expiry, deadline + HOLD_MARGIN)


def reminder_schedule(
    start: datetime, timings: LifecycleTimings, now: datetime
) -> list[tuple[float, datetime]]:
    """(offset, when) of the reminders still ahead; a reminder whose moment already
    passed when the session was booked is skipped rather than sent late."""
    schedule = [
        (offset, start - timedelta(seconds=offset)) for offset in timings.reminder_offsets_seconds
    ]
    return sorted(((offset, at) for offset, at in schedule if at > now), key=lambda item: item[1])


MEETING_MINIMUM_PATIENCE = timedelta(minutes=5)
"""However close the start, the platform gets this long to create (or move) a meeting."""


def meeting_deadline(start: datetime, timings: LifecycleTimings, now: datetime) -> datetime:
    """Until when a missing meeting is retried; a session still without one then is
    cancelled. A booking made at short notice may get a deadline after its start:
    the session then starts on time and its link follows when the platform is back."""
    return max(start - timings.meeting_deadline_before_start, now + MEETING_MINIMUM_PATIENCE)


def meeting_update_deadline(start: datetime, now: datetime) -> datetime:
    """Moving the meeting to the session's new time is worth retrying until it starts."""
    return max(start, now + MEETING_MINIMUM_PATIENCE)


def absent_party(attendance: Attendance) -> ParticipantRole | None:
    """Who is missing once the grace period is over. A missing consultant is named
    first: the learner cannot be blamed for a meeting nobody hosted."""
    if attendance.consultant_joined_at is None:
        return ParticipantRole.CONSULTANT
    if attendance.learner_joined_at is None:
        return ParticipantRole.LEARNER
    return None


def cancelled_session_status(party: Party) -> SessionStatus:
    """The seed's statuses name the learner and the consultant; operators and the
    system (compensation) use the plain ``cancelled``."""
    if party is Party.REQUESTER:
        return SessionStatus.CANCELLED_BY_USER
    if party is Party.CONSULTANT:
        return SessionStatus.CANCELLED_BY_CONSULTANT
    return SessionStatus.CANCELLED


def cancellation_status_reason(party: Party, reason: CancellationReason | None) -> StatusReason:
    if reason is CancellationReason.MEETING_PLATFORM_FAILURE:
        return StatusReason.MEETING_PLATFORM_FAILURE
    if party is Party.SYSTEM and reason is CancellationReason.ACCOUNT_ERASED:
        return StatusReason.ACCOUNT_ERASED
    if party is Party.REQUESTER:
        return StatusReason.CANCELLED_BY_REQUESTER
    if party is Party.CONSULTANT:
        return StatusReason.CANCELLED_BY_CONSULTANT
    return StatusReason.CANCELLED_BY_OPERATOR
