"""The learner's cutoffs: a service type may give rescheduling a cutoff of its own;
without one (and in workflows submitted before it existed) the cancel cutoff applies."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from core.vocabulary import ErrorType, Party
from tests.workflows.support import DEFAULT_TIMINGS
from workflows import rules
from workflows.contracts.messages import CancelRequest, RescheduleRequest
from workflows.contracts.workflow_input import LifecycleTimings
from workflows.state import Booking

HOUR = 3600.0
START = datetime(2027, 3, 10, 9, tzinfo=UTC)
LEARNER = uuid.uuid4()


def booking() -> Booking:
    return Booking(
        session_id=uuid.uuid4(),
        consultant_id=uuid.uuid4(),
        slot_id=uuid.uuid4(),
        start=START,
        end=START + timedelta(minutes=30),
    )


def timings(cancel_hours: float, reschedule_hours: float | None) -> LifecycleTimings:
    return replace(
        DEFAULT_TIMINGS,
        requester_cancel_cutoff_seconds=cancel_hours * HOUR,
        requester_reschedule_cutoff_seconds=(
            None if reschedule_hours is None else reschedule_hours * HOUR
        ),
    )


def reschedule(now: datetime, cutoffs: LifecycleTimings) -> None:
    rules.check_reschedule(
        RescheduleRequest(party=Party.REQUESTER, actor_id=LEARNER, slot_id=uuid.uuid4()),
        requester_id=LEARNER,
        booking=booking(),
        timings=cutoffs,
        now=now,
    )


def cancel(now: datetime, cutoffs: LifecycleTimings) -> None:
    rules.check_cancel(
        CancelRequest(party=Party.REQUESTER, actor_id=LEARNER),
        requester_id=LEARNER,
        booking=booking(),
        timings=cutoffs,
        now=now,
    )


def refused(check: object) -> str | None:
    try:
        assert callable(check)
        check()
    except ApplicationError as error:
        return error.type
    return None


@pytest.mark.parametrize(
    ("hours_before", "expected"),
    [(25, None), (23, ErrorType.DEADLINE_PASSED.value)],
)
def test_a_reschedule_cutoff_of_its_own_applies_to_rescheduling_only(
    hours_before: float, expected: str | None
) -> None:
    now = START - timedelta(hours=hours_before)
    own = timings(cancel_hours=2, reschedule_hours=24)

    assert refused(lambda: reschedule(now, own)) == expected
    assert refused(lambda: cancel(now, own)) is None  # cancelling still until 2 h before


def test_without_one_the_cancel_cutoff_applies_to_rescheduling() -> None:
    legacy = timings(cancel_hours=2, reschedule_hours=None)

    assert refused(lambda: reschedule(START - timedelta(hours=3), legacy)) is None
    assert refused(lambda: reschedule(START - timedelta(hours=1), legacy)) == (
        ErrorType.DEADLINE_PASSED.value
    )
