"""What a consultation workflow shows an operator in the Temporal UI and CLI.

``describe`` builds the live "current details" (Markdown, rendered by the UI and
printed as it is by ``temporal workflow metadata``): the next deadline first, in
bold, then the rest as a short list. Times are to the minute with their zone
(UTC: the workflow knows no one's zone), names where the workflow knows them (the
service type's), and short ids where it knows none. Current details are metadata
answered by a query, not commands, so changing them does not affect replay.

Pure and deterministic: no clock (``now`` is given), no locale (day and month
names are spelt out here, so every worker writes the same text).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from core.vocabulary import MeetingStatus, RequestStatus, SessionStatus
from workflows.contracts.messages import RequestDetails
from workflows.contracts.workflow_input import ConsultationInput
from workflows.state import Hold

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SHORT_ID_LENGTH = 8
NAME_LIMIT = 60
"""Service type names may be 200 characters; the summary is one line in a panel
and the details a glance, so longer names are shortened."""
MARKDOWN_SPECIALS = "\\`*_[]<>~"


def minute(moment: datetime, *, reference: datetime | None = None) -> str:
    """``Tue 8 Dec 09:15 UTC``: to the minute (seconds dropped, so a deadline is
    never shown later than it is), with the year unless it is ``reference``'s."""
    utc = moment.astimezone(UTC)
    same_year = reference is not None and reference.astimezone(UTC).year == utc.year
    year = "" if same_year else f" {utc.year}"
    return f"{DAYS[utc.weekday()]} {utc.day} {MONTHS[utc.month - 1]}{year} {utc:%H:%M} UTC"


def time_range(start: datetime, end: datetime, *, reference: datetime | None = None) -> str:
    """``Tue 8 Dec 10:00-11:00 UTC``, or both moments in full across midnight."""
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    if start_utc.date() == end_utc.date():
        return f"{minute(start, reference=reference)[: -len(' UTC')]}-{end_utc:%H:%M} UTC"
    return f"{minute(start, reference=reference)} to {minute(end, reference=reference)}"


def short_id(value: uuid.UUID) -> str:
    return str(value)[:SHORT_ID_LENGTH]


def service_name(request: ConsultationInput) -> str:
    """The service type's name as given at submission (shortened), else its short id."""
    name = request.service_type_name
    if not name or not name.strip():
        return f"service type {short_id(request.service_type_id)}"
    name = " ".join(name.split())
    return name if len(name) <= NAME_LIMIT else f"{name[: NAME_LIMIT - 1]}…"


def markdown_text(text: str) -> str:
    """``text`` shown as it is where Markdown is rendered."""
    return "".join(f"\\{char}" if char in MARKDOWN_SPECIALS else char for char in text)


def describe(
    details: RequestDetails,
    request: ConsultationInput,
    *,
    now: datetime,
    hold: Hold | None = None,
    reports_until: datetime | None = None,
) -> str:
    """The current details of a consultation workflow: a bold headline saying what
    it waits for and until when, then one item per further fact. ``hold`` is the
    slot held while a consultant decides; ``reports_until`` the end of the booked
    session's no-show report window (a completed session's workflow runs until then)."""
    show = _Show(now)
    if details.finished_at is not None:
        headline, facts = show.finished(details, request)
    elif details.status is RequestStatus.PENDING_ASSIGNMENT:
        headline, facts = show.assigning(details, request)
    elif details.status is RequestStatus.PENDING_CONFIRMATION:
        headline, facts = show.confirming(details, hold)
    elif details.status is RequestStatus.SCHEDULED:
        headline, facts = show.scheduled(details)
    elif (
        details.status is RequestStatus.COMPLETED
        and details.session_status is SessionStatus.COMPLETED
        and reports_until is not None
    ):
        headline = f"Completed; no-show reports accepted until {show.at(reports_until)}"
        facts = show.session(details)
    else:
        headline, facts = show.finished(details, request)
    service = f"{markdown_text(service_name(request))} ({request.duration_minutes} min)"
    return "\n".join([f"**{headline}**", "", *(f"- {fact}" for fact in [service, *facts])])


class _Show:
    """The headline and facts of each state; times relative to ``now``'s year."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def at(self, moment: datetime) -> str:
        return minute(moment, reference=self.now)

    def between(self, start: datetime, end: datetime) -> str:
        return time_range(start, end, reference=self.now)

    def assigning(
        self, details: RequestDetails, request: ConsultationInput
    ) -> tuple[str, list[str]]:
        if details.requested_at is None:
            return "Storing the request", [self.wanted(request)]
        retry = details.next_assignment_retry_at
        headline = (
            f"Waiting for a consultant: next search {self.at(retry)}"
            if retry
            else "Looking for a consultant now"
        )
        facts = [
            self.wanted(request),
            f"consultants asked so far: {details.attempt} of {details.max_attempts}",
        ]
        if request.requested_slot_id is not None or request.only_consultant_id is not None:
            facts.append("only the requested consultant serves it (or an operator's assign)")
        return headline, [*facts, *self.gives_up(details)]

    def confirming(self, details: RequestDetails, hold: Hold | None) -> tuple[str, list[str]]:
        deadline = details.confirmation_deadline
        headline = "Waiting for consultant answer"
        if deadline is not None:
            headline = f"{headline} until {self.at(deadline)}"
        facts = [
            f"{_consultant(details)} asked (attempt {details.attempt} of {details.max_attempts})"
        ]
        if hold is not None:
            facts.append(f"held: {self.between(hold.start, hold.end)}")
        return headline, [*facts, *self.gives_up(details)]

    def scheduled(self, details: RequestDetails) -> tuple[str, list[str]]:
        facts = self.session(details)
        if details.session_status is SessionStatus.IN_PROGRESS and details.session_end:
            headline = f"Session in progress until {self.at(details.session_end)}"
        elif details.session_start:
            headline = f"Session starts {self.at(details.session_start)}"
        else:
            headline = "Scheduled"
        if details.meeting_status is MeetingStatus.NEEDS_UPDATE:
            facts.append("meeting: ready, being moved to the new time on the platform")
        elif details.meeting_ready:
            facts.append("meeting: ready")
        elif details.meeting_deadline is not None:
            # The sooner deadline: without a meeting by then the session is cancelled.
            headline = f"Meeting link pending until {self.at(details.meeting_deadline)}"
            facts.append("meeting: the platform is retried; without one the session is cancelled")
        else:
            facts.append("meeting: not ready yet")
        return headline, facts

    def finished(
        self, details: RequestDetails, request: ConsultationInput
    ) -> tuple[str, list[str]]:
        headline = _words(details.status.value).capitalize()
        if details.finished_at is not None:
            headline = f"{headline} {self.at(details.finished_at)}"
        facts = []
        if details.status_reason is not None:
            facts.append(f"reason: {_words(details.status_reason.value)}")
        if details.session_id is not None:
            facts.extend(self.session(details))
        else:
            facts.append(self.wanted(request))
        return headline, facts

    def session(self, details: RequestDetails) -> list[str]:
        facts = [_consultant(details)]
        if details.session_id is not None:
            session = f"session {short_id(details.session_id)}"
            if details.session_status is not None:
                session = f"{session} ({_words(details.session_status.value)})"
            if details.session_start and details.session_end:
                session = f"{session}: {self.between(details.session_start, details.session_end)}"
            facts.append(session)
        return facts

    def wanted(self, request: ConsultationInput) -> str:
        """When the learner wants the session."""
        if request.requested_start is not None:
            return f"chosen start {self.at(request.requested_start)}"
        return f"any time from {self.at(request.window_start)} to {self.at(request.window_end)}"

    def gives_up(self, details: RequestDetails) -> list[str]:
        closes = details.assignment_closes_at
        return [f"gives up {self.at(closes)} without a booking"] if closes else []


def _consultant(details: RequestDetails) -> str:
    consultant = details.assigned_consultant_id
    return f"consultant {short_id(consultant)}" if consultant else "no consultant"


def _words(code: str) -> str:
    return code.replace("_", " ")
