"""Storing, rejecting and cancelling requests before any booking."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.drafts import stage_details
from activities.transitions import TransitionActivities
from core.vocabulary import CancellationReason, ErrorType, Party, StatusReason
from db.models import DomainEvent
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import (
    CancelRequestInput,
    ConfirmationReminderInput,
    PersistRequestInput,
    RejectRequestInput,
)


def persist_input(service_type_id: uuid.UUID, **changes: object) -> PersistRequestInput:
    request_id = uuid.uuid4()
    values: dict[str, object] = {
        "request_id": request_id,
        "requester_id": uuid.uuid4(),
        "service_type_id": service_type_id,
        "window_start": future(1),
        "window_end": future(8),
        "requested_slot_id": None,
        "preferred_consultant_id": None,
        "company_id": None,
        "idempotency_key": f"key-{request_id}",
        "details_staged": False,
    }
    values.update(changes)
    return PersistRequestInput(**values)  # type: ignore[arg-type]


async def test_persist_stores_the_request_once(backend: Backend) -> None:
    arg = persist_input(await backend.service_type())

    first = await backend.transitions.persist_request(arg)
    again = await backend.transitions.persist_request(arg)

    assert again == first
    row = await backend.request_row(arg.request_id)
    assert row.status == "pending_assignment"
    assert row.requested_at == first.requested_at
    assert (row.preferred_start_time, row.preferred_end_time) == (arg.window_start, arg.window_end)
    assert row.request_details is None
    events = await backend.events(arg.request_id)
    assert [e.event_type for e in events] == ["consultation.requested"]
    assert events[0].payload["requester_id"] == str(arg.requester_id)


async def test_persist_refuses_an_unknown_or_inactive_service_type(backend: Backend) -> None:
    for service_type_id in (uuid.uuid4(), await backend.service_type(active=False)):
        with pytest.raises(ApplicationError) as refused:
            await backend.transitions.persist_request(persist_input(service_type_id))
        assert refused.value.type == ErrorType.INVALID_REQUEST
        assert refused.value.non_retryable
    assert await backend.count(DomainEvent) == 0


async def test_a_reused_idempotency_key_names_the_request_that_has_it(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    first = persist_input(service_type_id)
    await backend.transitions.persist_request(first)
    clash = persist_input(
        service_type_id, requester_id=first.requester_id, idempotency_key=first.idempotency_key
    )

    with pytest.raises(ApplicationError) as refused:
        await backend.transitions.persist_request(clash)

    assert refused.value.type == ErrorType.DUPLICATE_IDEMPOTENCY_KEY
    assert refused.value.details == (str(first.request_id),)


async def test_persist_refuses_an_unknown_preferred_consultant(backend: Backend) -> None:
    arg = persist_input(await backend.service_type(), preferred_consultant_id=uuid.uuid4())
    with pytest.raises(ApplicationError) as refused:
        await backend.transitions.persist_request(arg)
    assert refused.value.type == ErrorType.INVALID_REQUEST


async def test_staged_details_move_into_the_request_row(
    backend: Backend, clean_database: AsyncEngine
) -> None:
    service_type_id = await backend.service_type()
    sessions = async_sessionmaker(clean_database, expire_on_commit=False)
    arg = persist_input(service_type_id, details_staged=True)
    async with sessions() as session, session.begin():
        await stage_details(
            session,
            request_id=arg.request_id,
            requester_id=arg.requester_id,
            details="I need help with linear algebra",
        )
    await TransitionActivities(sessions).persist_request(arg)
    await TransitionActivities(sessions).persist_request(arg)  # a retry changes nothing
    async with clean_database.connect() as connection:
        details = await connection.scalar(
            text("SELECT request_details FROM consultation_requests WHERE id = :id"),
            {"id": arg.request_id},
        )
        drafts = await connection.scalar(text("SELECT count(*) FROM consultation_request_drafts"))
    assert details == "I need help with linear algebra"
    assert drafts == 0


async def test_reject_releases_holds_and_emits_once(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    assert (await backend.hold(request_id, slot, consultant, not_before=start)).held

    rejection = RejectRequestInput(request_id=request_id, reason=StatusReason.ATTEMPTS_EXHAUSTED)
    await backend.transitions.reject_request(rejection)
    await backend.transitions.reject_request(rejection)

    row = await backend.request_row(request_id)
    assert (row.status, row.status_reason) == ("rejected", "attempts_exhausted")
    assert row.assigned_consultant_user_id is None
    assert [s.status for s in await backend.slots_of(consultant)] == ["available"]
    assert (await backend.event_types(request_id)).count("consultation.rejected") == 1


async def test_cancel_before_booking_records_who_and_why(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    request_id = await backend.request(service_type_id, window_start=future(), window_end=future(9))
    actor = uuid.uuid4()

    await backend.transitions.cancel_request(
        CancelRequestInput(
            request_id=request_id,
            party=Party.REQUESTER,
            actor_id=actor,
            reason=CancellationReason.CHANGE_OF_PLANS,
            status_reason=StatusReason.CANCELLED_BY_REQUESTER,
        )
    )

    row = await backend.request_row(request_id)
    assert (row.status, row.status_reason) == ("cancelled", "cancelled_by_requester")
    cancelled = (await backend.events(request_id))[-1]
    assert cancelled.event_type == "consultation.cancelled"
    assert cancelled.payload == {
        "cancelled_by": "requester",
        "actor_id": str(actor),
        "reason": "change_of_plans",
        "status_reason": "cancelled_by_requester",
    }


async def test_a_confirmation_reminder_only_while_that_attempt_waits(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    await backend.hold(request_id, slot, consultant, not_before=start)
    reminder = ConfirmationReminderInput(
        request_id=request_id, consultant_id=consultant, attempt=1, confirmation_deadline=start
    )
    stale = ConfirmationReminderInput(
        request_id=request_id, consultant_id=consultant, attempt=2, confirmation_deadline=start
    )

    await backend.transitions.remind_confirmation(reminder)
    await backend.transitions.remind_confirmation(reminder)
    await backend.transitions.remind_confirmation(stale)

    types = await backend.event_types(request_id)
    assert types.count("consultation.confirmation_reminder") == 1
