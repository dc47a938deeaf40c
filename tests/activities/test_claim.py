"""``claim_slot``: ranking and holding in one transaction, as the two activities it
replaces did in several."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import AvailabilitySlot
from tests.activities.builders import Backend, future
from tests.workflows.support import DEFAULT_TIMINGS
from workflows.contracts.activity_io import ClaimResult, ClaimSlotInput, FindCandidatesInput

CONTENDERS = 12


def claim_input(
    request_id: uuid.UUID,
    service_type_id: uuid.UUID,
    *,
    not_before: datetime,
    attempt: int = 1,
    **query: object,
) -> ClaimSlotInput:
    return ClaimSlotInput(
        query=FindCandidatesInput(
            request_id=request_id,
            service_type_id=service_type_id,
            duration_minutes=60,
            not_before=not_before,
            window_end=not_before + timedelta(days=7),
            **query,  # type: ignore[arg-type]
        ),
        attempt=attempt,
        now=datetime.now(UTC).replace(microsecond=0),
        timings=DEFAULT_TIMINGS,
    )


async def test_a_claim_holds_the_best_candidate_and_assigns_it(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    first, second = await backend.consultant(), await backend.consultant()
    start = future()
    await backend.slot(second, start + timedelta(hours=2))
    earliest = await backend.slot(first, start)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    arg = claim_input(request_id, service_type_id, not_before=start)

    result = await backend.requests.claim_slot(arg)

    claimed = result.claimed
    assert claimed is not None
    assert (claimed.consultant_id, claimed.slot_id) == (first, earliest)
    assert (claimed.start, claimed.end) == (start, start + timedelta(hours=1))
    # The deadline and the hold's expiry follow the same rules as the workflow's.
    assert claimed.confirmation_deadline == DEFAULT_TIMINGS.confirmation_deadline(arg.now, start)
    (slot_row,) = await backend.slots_of(first)
    assert (slot_row.status, slot_row.held_by_request_id) == ("held", request_id)
    assert slot_row.hold_expires_at == DEFAULT_TIMINGS.hold_expiry(
        arg.now, claimed.confirmation_deadline
    )
    row = await backend.request_row(request_id)
    assert (row.status, row.attempts, row.assigned_consultant_user_id) == (
        "pending_confirmation",
        1,
        first,
    )
    assert row.confirmation_deadline == claimed.confirmation_deadline
    assert await backend.event_types(request_id) == [
        "consultation.requested",
        "consultation.assigned",
        "consultation.confirmation_requested",
    ]


async def test_a_claim_run_again_after_its_commit_returns_the_same_hold(
    backend: Backend,
) -> None:
    """The worker died after the commit, before the result reached the history."""
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    start = future()
    await backend.slot(consultant, start, hours=3)
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    arg = claim_input(request_id, service_type_id, not_before=start)

    first = await backend.requests.claim_slot(arg)
    again = await backend.requests.claim_slot(arg)

    assert first.claimed is not None
    assert again == first
    held = [s for s in await backend.slots_of(consultant) if s.status == "held"]
    assert [s.id for s in held] == [first.claimed.slot_id]
    assert (await backend.event_types(request_id)).count("consultation.assigned") == 1


async def test_nothing_to_claim_names_the_policy_for_one_consultant(backend: Backend) -> None:
    service_type_id = await backend.service_type()
    consultant = await backend.consultant(max_sessions_per_day=1)
    start = future()
    await backend.slot(consultant, start, hours=4)
    first = await backend.request(service_type_id, window_start=start, window_end=future(9))
    assert (
        await backend.requests.claim_slot(claim_input(first, service_type_id, not_before=start))
    ).claimed
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))
    arg = claim_input(request_id, service_type_id, not_before=start, only_consultant_id=consultant)

    result = await backend.requests.claim_slot(arg)

    assert result == ClaimResult(claimed=None, refusal="daily_cap")
    assert (await backend.request_row(request_id)).status == "pending_assignment"


async def test_a_candidate_taken_while_the_claim_waits_gives_way_to_the_next(
    backend: Backend, clean_database: AsyncEngine
) -> None:
    """Another transaction holds the best slot's row while the claim ranks: the claim
    waits for it, finds the slot taken, and holds the next candidate instead."""
    service_type_id = await backend.service_type()
    first, second = await backend.consultant(), await backend.consultant()
    start = future()
    best = await backend.slot(first, start)
    runner_up = await backend.slot(second, start + timedelta(hours=1))
    other = await backend.request(service_type_id, window_start=start, window_end=future(9))
    request_id = await backend.request(service_type_id, window_start=start, window_end=future(9))

    async with clean_database.connect() as rival:
        rival_transaction = await rival.begin()
        await rival.execute(
            update(AvailabilitySlot)
            .where(AvailabilitySlot.id == best)
            .values(status="held", held_by_request_id=other, hold_expires_at=future(2))
        )
        claim = asyncio.create_task(
            backend.requests.claim_slot(claim_input(request_id, service_type_id, not_before=start))
        )
        await _until_a_backend_waits_for_a_lock(clean_database)
        await rival_transaction.commit()
        result = await claim

    assert result.claimed is not None
    assert (result.claimed.consultant_id, result.claimed.slot_id) == (second, runner_up)
    rows = {s.id: (s.status, s.held_by_request_id) for s in await backend.slots_of(first)}
    assert rows == {best: ("held", other)}
    assert (await backend.request_row(request_id)).assigned_consultant_user_id == second


async def test_racing_claims_in_different_orders_share_the_slots_without_deadlock(
    backend: Backend,
) -> None:
    """Each request prefers another consultant, so the claims try the same slots in
    different orders; a candidate given up releases its locks (savepoint), so no
    claim waits for one another claim holds while it waits for the first's."""
    service_type_id = await backend.service_type()
    consultants = [await backend.consultant() for _ in range(3)]
    start = future()
    for consultant in consultants:
        await backend.slot(consultant, start)
    requests = [
        await backend.request(
            service_type_id,
            window_start=start,
            window_end=future(9),
            preferred_consultant_id=consultants[index % len(consultants)],
        )
        for index in range(CONTENDERS)
    ]

    results = await asyncio.gather(
        *(
            backend.requests.claim_slot(
                claim_input(
                    request_id,
                    service_type_id,
                    not_before=start,
                    preferred_consultant_id=consultants[index % len(consultants)],
                )
            )
            for index, request_id in enumerate(requests)
        )
    )

    claimed = [result.claimed for result in results if result.claimed is not None]
    assert sorted(c.consultant_id for c in claimed) == sorted(consultants)
    statuses = [(await backend.request_row(request_id)).status for request_id in requests]
    assert statuses.count("pending_confirmation") == len(consultants)
    assert statuses.count("pending_assignment") == CONTENDERS - len(consultants)
    async with backend.session_factory() as session:
        held_by = set(
            await session.scalars(
                select(AvailabilitySlot.held_by_request_id).where(AvailabilitySlot.status == "held")
            )
        )
    assert held_by == {
        request_id
        for request_id, result in zip(requests, results, strict=True)
        if result.claimed is not None
    }


async def _until_a_backend_waits_for_a_lock(engine: AsyncEngine) -> None:
    for _ in range(200):
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the claim never waited for the rival's row lock")
