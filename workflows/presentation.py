"""The live details line each workflow shows in the Temporal UI: what it waits for."""

from __future__ import annotations

from datetime import datetime

from core.vocabulary import MeetingStatus, RequestStatus
from workflows.contracts.messages import RequestDetails


def describe(details: RequestDetails) -> str:
    status = details.status.value
    if details.status is RequestStatus.PENDING_ASSIGNMENT:
        retry = details.next_assignment_retry_at
        when = f"next search at {_iso(retry)}" if retry else "searching"
        return (
            f"**{status}**: attempt {details.attempt}/{details.max_attempts}, {when}; "
            f"gives up at {_iso(details.assignment_closes_at)}"
        )
    if details.status is RequestStatus.PENDING_CONFIRMATION:
        return (
            f"**{status}**: consultant {details.assigned_consultant_id} must answer by "
            f"{_iso(details.confirmation_deadline)} "
            f"(attempt {details.attempt}/{details.max_attempts})"
        )
    if details.status is RequestStatus.SCHEDULED:
        session = details.session_status.value if details.session_status else "unknown"
        meeting = _meeting(details)
        return (
            f"**{status}**: session {details.session_id} ({session}) with consultant "
            f"{details.assigned_consultant_id}, {_iso(details.session_start)} to "
            f"{_iso(details.session_end)}; meeting {meeting}"
        )
    reason = f" ({details.status_reason.value})" if details.status_reason else ""
    session = f"; session {details.session_status.value}" if details.session_status else ""
    return f"**{status}**{reason}{session}"


def _meeting(details: RequestDetails) -> str:
    if details.meeting_status is MeetingStatus.NEEDS_UPDATE:
        return "ready, but still at the old time on the platform"
    if details.meeting_ready:
        return "ready"
    if details.meeting_deadline is not None:
        return f"pending (platform retried until {_iso(details.meeting_deadline)})"
    return "not ready yet"


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "n/a"
