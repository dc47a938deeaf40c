"""The consultation workflow's side of an erasure: the system may cancel for it (and
only for it), the request's status reason says so, and the erasure reaches the
workflow's updates by their real names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.workflow import _Definition

from core.pseudonyms import pseudonym_for
from core.vocabulary import CancellationReason, ErrorType, Party, SessionStatus, StatusReason
from tests.events.harness import SHORT_TIMINGS
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.erasure import CANCEL_UPDATE, DECLINE_UPDATE
from workflows.contracts.messages import CancelRequest
from workflows.rules import check_cancel
from workflows.state import Booking
from workflows.timeline import cancellation_status_reason, cancelled_session_status

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
REQUESTER = uuid.uuid4()


def _booking(status: SessionStatus = SessionStatus.SCHEDULED) -> Booking:
    return Booking(
        session_id=uuid.uuid4(),
        consultant_id=uuid.uuid4(),
        slot_id=uuid.uuid4(),
        start=NOW + timedelta(minutes=30),  # inside the requester's cutoff, even
        end=NOW + timedelta(minutes=90),
        status=status,
    )


def _cancel(reason: CancellationReason | None, booking: Booking | None) -> None:
    check_cancel(
        CancelRequest(party=Party.SYSTEM, actor_id=uuid.uuid4(), reason=reason),
        requester_id=REQUESTER,
        booking=booking,
        timings=SHORT_TIMINGS,
        now=NOW,
    )


def test_the_system_cancels_for_an_erasure_before_and_after_a_booking() -> None:
    _cancel(CancellationReason.ACCOUNT_ERASED, None)
    _cancel(CancellationReason.ACCOUNT_ERASED, _booking())


@pytest.mark.parametrize("reason", [None, CancellationReason.OTHER])
def test_the_system_cancels_for_nothing_else(reason: CancellationReason | None) -> None:
    with pytest.raises(ApplicationError) as refused:
        _cancel(reason, _booking())
    assert refused.value.type == ErrorType.NOT_ALLOWED


def test_a_session_in_progress_is_not_cancelled_even_for_an_erasure() -> None:
    with pytest.raises(ApplicationError) as refused:
        _cancel(CancellationReason.ACCOUNT_ERASED, _booking(SessionStatus.IN_PROGRESS))
    assert refused.value.type == ErrorType.INVALID_STATE


def test_an_erasure_cancellation_says_so() -> None:
    erased = cancellation_status_reason(Party.SYSTEM, CancellationReason.ACCOUNT_ERASED)
    assert erased is StatusReason.ACCOUNT_ERASED
    assert cancelled_session_status(Party.SYSTEM) is SessionStatus.CANCELLED
    # Nobody else's cancellation can pass for one.
    assert (
        cancellation_status_reason(Party.REQUESTER, CancellationReason.ACCOUNT_ERASED)
        is StatusReason.CANCELLED_BY_REQUESTER
    )


def test_the_erasure_names_the_workflows_updates() -> None:
    definition = _Definition.must_from_class(ConsultationWorkflow)
    assert {CANCEL_UPDATE, DECLINE_UPDATE} <= set(definition.updates)


def test_a_pseudonym_is_stable_and_depends_on_the_secret() -> None:
    person = uuid.uuid4()
    secret = "a-pseudonym-secret-of-some-length-000000"
    assert pseudonym_for(person, secret) == pseudonym_for(person, secret)
    assert pseudonym_for(person, secret) != person
    assert pseudonym_for(person, secret) != pseudonym_for(person, secret + "x")
    assert pseudonym_for(person, secret) != pseudonym_for(uuid.uuid4(), secret)
