"""The request activities: storing a request, ranking candidates, holding a slot for an
attempt and releasing it, reminding, rejecting and cancelling before any booking."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.requests import RequestActivities
from core.vocabulary import CancellationReason, DeclineReason, ErrorType, Party, StatusReason
from db.drafts import stage_details
from db.models import (
    ConsultantProfile,
    ConsultationRequest,
    ConsultationRequestDraft,
    DomainEvent,
)
from tests.activities.builders import Backend, future
from workflows.contracts.activity_io import (
    CancelRequestInput,
    ConfirmationReminderInput,
    FindCandidatesInput,
    PersistRequestInput,
    RejectRequestInput,
    ReleaseHoldInput,
    ReleaseOutcome,
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

    first = await backend.requests.persist_request(arg)
    again = await backend.requests.persist_request(arg)

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
            await backend.requests.persist_request(persist_input(service_type_id))
        assert refused.value.type == ErrorType.INVALID_REQUEST
        assert refused.value.non_retryable
    assert await backend.count(DomainEvent) == 0


async def test_a_reused_idempotency_key_names_the_request_that_has_it(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    first = persist_input(service_type_id)
    await backend.requests.persist_request(first)
    clash = persist_input(
        service_type_id, requester_id=first.requester_id, idempotency_key=first.idempotency_key
    )

    with pytest.raises(ApplicationError) as refused:
        await backend.requests.persist_request(clash)

    assert refused.value.type == ErrorType.DUPLICATE_IDEMPOTENCY_KEY
    assert refused.value.details == (str(first.request_id),)


async def test_persist_refuses_an_unknown_preferred_consultant(backend: Backend) -> None:
    arg = persist_input(await backend.service_type(), preferred_consultant_id=uuid.uuid4())
    with pytest.raises(ApplicationError) as refused:
        await backend.requests.persist_request(arg)
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
    await RequestActivities(sessions).persist_request(arg)
    await RequestActivities(sessions).persist_request(arg)  # a retry changes nothing
    async with clean_database.connect() as connection:
        details = await connection.scalar(
            text("SELECT request_details FROM consultation_requests WHERE id = :id"),
            {"id": arg.request_id},
        )
        drafts = await connection.scalar(text("SELECT count(*) FROM consultation_request_drafts"))
    assert details == "I need help with linear algebra"
    assert drafts == 0


async def test_persist_refuses_a_request_over_the_open_request_cap_and_drops_its_draft(
    backend: Backend, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    service_type_id = await backend.service_type()
    first = persist_input(service_type_id, open_request_cap=1)
    await backend.requests.persist_request(first)
    over = persist_input(
        service_type_id, requester_id=first.requester_id, open_request_cap=1, details_staged=True
    )
    async with session_factory() as session, session.begin():
        await stage_details(
            session, request_id=over.request_id, requester_id=over.requester_id, details="x"
        )

    with pytest.raises(ApplicationError) as refused:
        await backend.requests.persist_request(over)

    assert refused.value.type == ErrorType.OPEN_REQUEST_LIMIT
    assert refused.value.non_retryable
    assert refused.value.details == (1, 1)
    assert await backend.count(ConsultationRequest) == 1
    assert await backend.count(ConsultationRequestDraft) == 0
    # Another learner is not affected, and neither is a request without a cap.
    assert await backend.requests.persist_request(
        persist_input(service_type_id, open_request_cap=1)
    )
    assert await backend.requests.persist_request(
        persist_input(service_type_id, requester_id=first.requester_id)
    )


async def test_a_request_whose_staged_details_are_gone_is_refused_not_stored_without(
    backend: Backend,
) -> None:
    arg = persist_input(await backend.service_type(), details_staged=True)  # nothing staged
    with pytest.raises(ApplicationError) as refused:
        await backend.requests.persist_request(arg)
    assert refused.value.type == ErrorType.INVALID_REQUEST
    assert refused.value.non_retryable
    assert await backend.count(ConsultationRequest) == 0
    assert await backend.count(DomainEvent) == 0


async def test_reject_releases_holds_and_emits_once(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    assert (await backend.hold(request_id, slot, consultant, not_before=start)).held

    rejection = RejectRequestInput(request_id=request_id, reason=StatusReason.ATTEMPTS_EXHAUSTED)
    await backend.requests.reject_request(rejection)
    await backend.requests.reject_request(rejection)

    row = await backend.request_row(request_id)
    assert (row.status, row.status_reason) == ("rejected", "attempts_exhausted")
    assert row.assigned_consultant_user_id is None
    assert [s.status for s in await backend.slots_of(consultant)] == ["available"]
    assert (await backend.event_types(request_id)).count("consultation.rejected") == 1


async def test_cancel_before_booking_records_who_and_why(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    request_id = await backend.request(service_type_id, window_start=future(), window_end=future(9))
    actor = uuid.uuid4()

    await backend.requests.cancel_request(
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

    await backend.requests.remind_confirmation(reminder)
    await backend.requests.remind_confirmation(reminder)
    await backend.requests.remind_confirmation(stale)

    types = await backend.event_types(request_id)
    assert types.count("consultation.confirmation_reminder") == 1


def query(service_type_id: uuid.UUID, **changes: object) -> FindCandidatesInput:
    values: dict[str, object] = {
        "request_id": uuid.uuid4(),
        "service_type_id": service_type_id,
        "duration_minutes": 60,
        "not_before": future(1, hour=0),
        "window_end": future(10),
    }
    values.update(changes)
    return FindCandidatesInput(**values)  # type: ignore[arg-type]


async def ranked(backend: Backend, arg: FindCandidatesInput) -> list[uuid.UUID]:
    found = await backend.requests.find_candidates(arg)
    return [candidate.consultant_id for candidate in found.candidates]


async def test_earliest_fit_first_then_lighter_week_then_least_recently_assigned(
    backend: Backend,
) -> None:
    service_type_id = await backend.service_type()
    start = future(3)
    later = await backend.consultant()
    await backend.slot(later, start + timedelta(hours=2))
    busy = await backend.consultant(last_assigned_at=datetime(2020, 1, 1, tzinfo=UTC))
    await backend.slot(busy, start)
    recent = await backend.consultant(last_assigned_at=datetime.now(UTC))
    await backend.slot(recent, start)
    never = await backend.consultant()
    await backend.slot(never, start)
    # ``busy`` has a session the day before: a heavier week than the others.
    other_service = await backend.service_type()
    earlier_request = await backend.request(
        other_service, window_start=start - timedelta(days=1), window_end=start
    )
    earlier_slot = await backend.slot(busy, start - timedelta(days=1))
    await backend.book(earlier_request, earlier_slot, busy, start - timedelta(days=1))

    assert await ranked(backend, query(service_type_id)) == [never, recent, busy, later]


async def test_the_preferred_consultant_comes_first_when_eligible(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    early = await backend.consultant()
    await backend.slot(early, future(2))
    preferred = await backend.consultant()
    await backend.slot(preferred, future(6))

    assert await ranked(backend, query(service_type_id, preferred_consultant_id=preferred)) == [
        preferred,
        early,
    ]
    excluded = query(
        service_type_id, preferred_consultant_id=preferred, excluded_consultant_ids=(preferred,)
    )
    assert await ranked(backend, excluded) == [early]


async def test_only_eligible_consultants_with_a_fitting_free_slot(backend: Backend) -> None:
    service_type_id = await backend.service_type(specialization="math")
    start = future(3)
    fits = await backend.consultant(specializations=("math", "physics"))
    await backend.slot(fits, start)
    wrong_field = await backend.consultant(specializations=("history",))
    await backend.slot(wrong_field, start)
    paused = await backend.consultant(specializations=("math",), available=False)
    await backend.slot(paused, start)
    too_short = await backend.consultant(specializations=("math",))
    await backend.slot(too_short, start, hours=0.5)
    outside = await backend.consultant(specializations=("math",))
    await backend.slot(outside, future(12))
    taken = await backend.consultant(specializations=("math",))
    await backend.slot(taken, start, status="booked")
    excluded = await backend.consultant(specializations=("math",))
    await backend.slot(excluded, start)

    arg = query(service_type_id, excluded_consultant_ids=(excluded,))
    assert await ranked(backend, arg) == [fits]
    assert await ranked(backend, query(service_type_id, only_consultant_id=paused)) == []


async def test_a_requested_slot_limits_the_search_to_it(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    first = await backend.consultant()
    await backend.slot(first, future(2))
    second = await backend.consultant()
    wanted = await backend.slot(second, future(4), hours=3)

    found = await backend.requests.find_candidates(query(service_type_id, requested_slot_id=wanted))
    (candidate,) = found.candidates
    assert (candidate.consultant_id, candidate.slot_id) == (second, wanted)
    assert candidate.start == future(4)
    assert candidate.end == future(4) + timedelta(hours=1)


async def test_a_slot_starting_before_the_window_fits_from_the_window_start(
    backend: Backend,
) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    await backend.slot(consultant, future(3, hour=8), hours=4)
    not_before = future(3, hour=10)

    found = await backend.requests.find_candidates(query(service_type_id, not_before=not_before))
    assert [c.start for c in found.candidates] == [not_before]


async def test_hold_moves_the_request_to_pending_confirmation(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start, hours=2)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))

    held = await backend.hold(request_id, slot, consultant, not_before=start + timedelta(hours=1))
    again = await backend.hold(request_id, slot, consultant, not_before=start + timedelta(hours=1))

    assert held == again
    assert held.held
    assert (held.start, held.end) == (start + timedelta(hours=1), start + timedelta(hours=2))
    row = await backend.request_row(request_id)
    assert (row.status, row.attempts) == ("pending_confirmation", 1)
    assert row.assigned_consultant_user_id == consultant
    assert row.confirmation_deadline is not None
    # The hold carved the slot: the held part keeps its id, the hour before stays free.
    pieces = [
        (s.id == slot, s.start_time, s.status, s.held_by_request_id, s.carved_from_slot_id)
        for s in await backend.slots_of(consultant)
    ]
    assert pieces == [
        (False, start, "available", None, slot),
        (True, start + timedelta(hours=1), "held", request_id, None),
    ]
    async with backend.session_factory() as session:
        assigned_at = await session.scalar(
            select(ConsultantProfile.last_assigned_at).where(
                ConsultantProfile.consultant_user_id == consultant
            )
        )
    assert assigned_at is not None
    assert await backend.event_types(request_id) == [
        "consultation.requested",
        "consultation.assigned",
        "consultation.confirmation_requested",
    ]


async def test_a_stale_attempt_holds_nothing(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    first_slot = await backend.slot(consultant, start)
    second_slot = await backend.slot(consultant, start + timedelta(hours=2))
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    assert (await backend.hold(request_id, first_slot, consultant, not_before=start)).held

    late = await backend.hold(request_id, second_slot, consultant, not_before=start, attempt=1)

    assert not late.held
    statuses = {s.id: s.status for s in await backend.slots_of(consultant)}
    assert statuses == {first_slot: "held", second_slot: "available"}


async def test_a_slot_held_for_another_request_is_lost(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    winner = await backend.request(service_type_id, window_start=start, window_end=future(9))
    loser = await backend.request(service_type_id, window_start=start, window_end=future(9))

    assert (await backend.hold(winner, slot, consultant, not_before=start)).held
    assert not (await backend.hold(loser, slot, consultant, not_before=start)).held
    assert (await backend.request_row(loser)).status == "pending_assignment"


async def test_decline_releases_the_slot_and_reopens_assignment(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    await backend.hold(request_id, slot, consultant, not_before=start)
    release = ReleaseHoldInput(
        request_id=request_id,
        slot_id=slot,
        consultant_id=consultant,
        attempt=1,
        outcome=ReleaseOutcome.DECLINED,
        decline_reason=DeclineReason.SCHEDULE_CONFLICT,
    )

    await backend.requests.release_hold(release)
    await backend.requests.release_hold(release)

    row = await backend.request_row(request_id)
    assert (row.status, row.assigned_consultant_user_id, row.attempts) == (
        "pending_assignment",
        None,
        1,
    )
    (slot_row,) = await backend.slots_of(consultant)
    assert (slot_row.status, slot_row.held_by_request_id) == ("available", None)
    declined = [e for e in await backend.events(request_id) if e.event_type.endswith("declined")]
    assert len(declined) == 1
    assert declined[0].payload["reason"] == "schedule_conflict"


async def test_an_expired_confirmation_is_its_own_event(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    slot = await backend.slot(consultant, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    await backend.hold(request_id, slot, consultant, not_before=start)

    await backend.requests.release_hold(
        ReleaseHoldInput(
            request_id=request_id,
            slot_id=slot,
            consultant_id=consultant,
            attempt=1,
            outcome=ReleaseOutcome.CONFIRMATION_EXPIRED,
        )
    )

    assert (await backend.event_types(request_id))[-1] == "consultation.confirmation_expired"
