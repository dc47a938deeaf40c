"""What operators read in the Temporal UI: the static summary and the current details
of each state (the next deadline first, to the minute with the zone, names where
the workflow knows them, short ids elsewhere)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.vocabulary import MeetingStatus, RequestStatus, SessionStatus, StatusReason
from tests.workflows.support import make_input
from workflows.contracts.messages import RequestDetails
from workflows.contracts.workflow_input import ConsultationInput
from workflows.presentation import NAME_LIMIT, describe, minute, time_range
from workflows.start import static_summary
from workflows.state import Hold

# Seconds and microseconds everywhere, so minute precision shows.
NOW = datetime(2026, 12, 7, 8, 59, 41, 123456, tzinfo=UTC)  # a Monday
LEARNER = uuid.UUID("1a2b3c4d-0000-4000-8000-000000000001")
CONSULTANT = uuid.UUID("c0c0c0c0-0000-4000-8000-000000000002")
SESSION = uuid.UUID("5e55e55e-0000-4000-8000-000000000003")
SLOT = uuid.UUID("51075107-0000-4000-8000-000000000004")
SERVICE_TYPE = uuid.UUID("7e7e7e7e-0000-4000-8000-000000000005")
START = datetime(2026, 12, 8, 9, 0, 30, tzinfo=UTC)
END = START + timedelta(hours=1)


def request(**changes: Any) -> ConsultationInput:
    named: dict[str, Any] = {
        "requester_id": LEARNER,
        "service_type_id": SERVICE_TYPE,
        "service_type_name": "Career coaching",
    }
    return make_input(NOW, **{**named, **changes})


def waiting(**changes: Any) -> RequestDetails:
    details = RequestDetails(
        request_id=uuid.uuid4(),
        status=RequestStatus.PENDING_ASSIGNMENT,
        requested_at=NOW,
        attempt=1,
        max_attempts=3,
        assignment_closes_at=datetime(2026, 12, 20, 9, 0, 59, tzinfo=UTC),
    )
    return replace(details, **changes)


def booked(**changes: Any) -> RequestDetails:
    session: dict[str, Any] = {
        "status": RequestStatus.SCHEDULED,
        "assigned_consultant_id": CONSULTANT,
        "session_id": SESSION,
        "session_status": SessionStatus.SCHEDULED,
        "session_start": START,
        "session_end": END,
    }
    return waiting(**{**session, **changes})


def lines(text: str) -> list[str]:
    return text.splitlines()


# --- times -----------------------------------------------------------------------------


def test_times_are_to_the_minute_with_the_zone() -> None:
    assert minute(NOW, reference=NOW) == "Mon 7 Dec 08:59 UTC"
    berlin_evening = datetime.fromisoformat("2026-12-08T23:30:59+01:00")
    assert minute(berlin_evening, reference=NOW) == "Tue 8 Dec 22:30 UTC"


def test_the_year_shows_only_when_it_is_not_the_current_one() -> None:
    assert minute(datetime(2027, 1, 5, 10, 0, tzinfo=UTC), reference=NOW) == (
        "Tue 5 Jan 2027 10:00 UTC"
    )
    assert minute(NOW) == "Mon 7 Dec 2026 08:59 UTC"


def test_a_range_within_a_day_names_the_day_once() -> None:
    assert time_range(START, END, reference=NOW) == "Tue 8 Dec 09:00-10:00 UTC"
    late = datetime(2026, 12, 8, 23, 30, tzinfo=UTC)
    assert time_range(late, late + timedelta(hours=1), reference=NOW) == (
        "Tue 8 Dec 23:30 UTC to Wed 9 Dec 00:30 UTC"
    )


# --- the static summary ------------------------------------------------------------------


def test_the_summary_names_the_service_type_and_the_chosen_start() -> None:
    chosen = request(requested_start=START, window_start=START, window_end=END)
    assert static_summary(chosen) == (
        "Career coaching (60 min) for learner 1a2b3c4d, from Tue 8 Dec 09:00 UTC"
    )


def test_the_summary_of_a_window_gives_both_ends() -> None:
    assert static_summary(request()) == (
        "Career coaching (60 min) for learner 1a2b3c4d, "
        "between Mon 7 Dec 08:59 UTC and Mon 21 Dec 08:59 UTC"
    )


def test_the_summary_names_a_bound_or_preferred_consultant_and_a_requested_slot() -> None:
    bound = request(requested_start=START, preferred_consultant_id=CONSULTANT)
    assert static_summary(bound).endswith(", with consultant c0c0c0c0")
    preferred = request(preferred_consultant_id=CONSULTANT, requested_slot_id=SLOT)
    assert static_summary(preferred).endswith(", prefers consultant c0c0c0c0, slot 51075107")


def test_without_a_name_the_summary_gives_the_short_id() -> None:
    """Workflows started before the name was carried in the input."""
    assert static_summary(request(service_type_name=None)).startswith(
        "service type 7e7e7e7e (60 min) for learner 1a2b3c4d, "
    )


def test_a_long_name_is_shortened() -> None:
    long_name = "Überprüfung 📚 " * 20
    named = request(service_type_name=long_name[:200])
    shortened = long_name[: NAME_LIMIT - 1] + "… (60 min)"
    summary = static_summary(named)
    assert summary.startswith(shortened)
    assert len(summary) < 150
    assert lines(describe(waiting(), named, now=NOW))[2] == f"- {shortened}"


# --- current details, state by state ---------------------------------------------------------


def test_searching_shows_the_next_search_first_then_when_it_gives_up() -> None:
    text = describe(
        waiting(next_assignment_retry_at=NOW + timedelta(minutes=15)), request(), now=NOW
    )
    assert lines(text) == [
        "**Waiting for a consultant: next search Mon 7 Dec 09:14 UTC**",
        "",
        "- Career coaching (60 min)",
        "- any time from Mon 7 Dec 08:59 UTC to Mon 21 Dec 08:59 UTC",
        "- consultants asked so far: 1 of 3",
        "- gives up Sun 20 Dec 09:00 UTC without a booking",
    ]


def test_a_search_in_progress_and_a_request_not_stored_yet() -> None:
    searching = describe(waiting(), request(), now=NOW)
    assert lines(searching)[0] == "**Looking for a consultant now**"
    storing = describe(waiting(requested_at=None), request(requested_start=START), now=NOW)
    assert lines(storing) == [
        "**Storing the request**",
        "",
        "- Career coaching (60 min)",
        "- chosen start Tue 8 Dec 09:00 UTC",
    ]


def test_a_request_bound_to_its_consultant_says_so_while_it_waits() -> None:
    text = describe(waiting(), request(requested_slot_id=SLOT), now=NOW)
    assert "- only the requested consultant serves it (or an operator's assign)" in lines(text)


def test_waiting_for_an_answer_shows_the_deadline_first() -> None:
    deadline = datetime(2026, 12, 8, 5, 0, 59, 999999, tzinfo=UTC)
    hold = Hold(consultant_id=CONSULTANT, slot_id=SLOT, start=START, end=END, deadline=deadline)
    details = waiting(
        status=RequestStatus.PENDING_CONFIRMATION,
        assigned_consultant_id=CONSULTANT,
        held_slot_id=SLOT,
        confirmation_deadline=deadline,
    )
    assert lines(describe(details, request(), now=NOW, hold=hold)) == [
        "**Waiting for consultant answer until Tue 8 Dec 05:00 UTC**",
        "",
        "- Career coaching (60 min)",
        "- consultant c0c0c0c0 asked (attempt 1 of 3)",
        "- held: Tue 8 Dec 09:00-10:00 UTC",
        "- gives up Sun 20 Dec 09:00 UTC without a booking",
    ]


def test_a_booked_session_shows_its_start_first() -> None:
    details = booked(meeting_ready=True, meeting_status=MeetingStatus.READY)
    assert lines(describe(details, request(), now=NOW)) == [
        "**Session starts Tue 8 Dec 09:00 UTC**",
        "",
        "- Career coaching (60 min)",
        "- consultant c0c0c0c0",
        "- session 5e55e55e (scheduled): Tue 8 Dec 09:00-10:00 UTC",
        "- meeting: ready",
    ]


def test_a_pending_meeting_shows_its_deadline_before_the_start() -> None:
    details = booked(
        meeting_status=MeetingStatus.PENDING, meeting_deadline=START - timedelta(minutes=15)
    )
    text = lines(describe(details, request(), now=NOW))
    assert text[0] == "**Meeting link pending until Tue 8 Dec 08:45 UTC**"
    assert "- meeting: the platform is retried; without one the session is cancelled" in text
    assert "- session 5e55e55e (scheduled): Tue 8 Dec 09:00-10:00 UTC" in text


def test_a_meeting_being_moved_and_one_not_made_yet() -> None:
    moved = booked(meeting_ready=True, meeting_status=MeetingStatus.NEEDS_UPDATE)
    assert "- meeting: ready, being moved to the new time on the platform" in lines(
        describe(moved, request(), now=NOW)
    )
    assert "- meeting: not ready yet" in lines(describe(booked(), request(), now=NOW))


def test_a_session_in_progress_shows_its_end() -> None:
    details = booked(session_status=SessionStatus.IN_PROGRESS, meeting_ready=True)
    text = lines(describe(details, request(), now=NOW))
    assert text[0] == "**Session in progress until Tue 8 Dec 10:00 UTC**"
    assert "- session 5e55e55e (in progress): Tue 8 Dec 09:00-10:00 UTC" in text


def test_a_completed_session_shows_how_long_no_shows_may_be_reported() -> None:
    details = booked(status=RequestStatus.COMPLETED, session_status=SessionStatus.COMPLETED)
    text = lines(describe(details, request(), now=NOW, reports_until=END + timedelta(hours=24)))
    assert text[0] == "**Completed; no-show reports accepted until Wed 9 Dec 10:00 UTC**"
    assert "- session 5e55e55e (completed): Tue 8 Dec 09:00-10:00 UTC" in text


def test_the_report_window_shows_only_once_the_session_completed() -> None:
    """The workflow passes the window's end whenever a session is booked."""
    until = END + timedelta(hours=24)
    no_show = booked(
        status=RequestStatus.COMPLETED,
        status_reason=StatusReason.NO_SHOW_CONSULTANT,
        session_status=SessionStatus.NO_SHOW_CONSULTANT,
    )
    assert lines(describe(no_show, request(), now=NOW, reports_until=until))[0] == "**Completed**"
    scheduled = describe(booked(), request(), now=NOW, reports_until=until)
    assert lines(scheduled)[0] == "**Session starts Tue 8 Dec 09:00 UTC**"


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        (
            booked(
                status=RequestStatus.CANCELLED,
                status_reason=StatusReason.CANCELLED_BY_OPERATOR,
                session_status=SessionStatus.CANCELLED,
                finished_at=NOW,
            ),
            [
                "**Cancelled Mon 7 Dec 08:59 UTC**",
                "",
                "- Career coaching (60 min)",
                "- reason: cancelled by operator",
                "- consultant c0c0c0c0",
                "- session 5e55e55e (cancelled): Tue 8 Dec 09:00-10:00 UTC",
            ],
        ),
        (
            waiting(
                status=RequestStatus.REJECTED,
                status_reason=StatusReason.NO_CONSULTANT_AVAILABLE,
                finished_at=datetime(2027, 1, 4, 12, 0, 1, tzinfo=UTC),
            ),
            [
                "**Rejected Mon 4 Jan 2027 12:00 UTC**",
                "",
                "- Career coaching (60 min)",
                "- reason: no consultant available",
                "- any time from Mon 7 Dec 08:59 UTC to Mon 21 Dec 08:59 UTC",
            ],
        ),
        (
            booked(
                status=RequestStatus.COMPLETED,
                status_reason=StatusReason.NO_SHOW_USER,
                session_status=SessionStatus.NO_SHOW_USER,
            ),
            [
                "**Completed**",
                "",
                "- Career coaching (60 min)",
                "- reason: no show user",
                "- consultant c0c0c0c0",
                "- session 5e55e55e (no show user): Tue 8 Dec 09:00-10:00 UTC",
            ],
        ),
    ],
    ids=["cancelled", "rejected", "no-show"],
)
def test_a_finished_request_says_how_and_when_it_ended(
    details: RequestDetails, expected: list[str]
) -> None:
    assert lines(describe(details, request(), now=NOW)) == expected


def test_without_a_name_the_details_give_the_short_id() -> None:
    text = describe(waiting(), request(service_type_name=None), now=NOW)
    assert lines(text)[2] == "- service type 7e7e7e7e (60 min)"


def test_markdown_in_a_name_is_shown_as_it_is() -> None:
    text = describe(waiting(), request(service_type_name="C++ *deep* dive [beta]"), now=NOW)
    assert lines(text)[2] == r"- C++ \*deep\* dive \[beta\] (60 min)"
