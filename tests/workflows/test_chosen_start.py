"""A request for a chosen start: only its consultant is asked, exactly that time is
held (in whichever piece of the slot holds it), booked and, on a reschedule to a
chosen start, moved to."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from core.vocabulary import Party, RequestStatus
from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import make_input, running_worker, wait_for
from tests.workflows.test_messages import confirm, operator_cancel, submit
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import RescheduleRequest
from workflows.contracts.names import ActivityName


async def test_a_chosen_start_is_held_booked_and_moved_exactly(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3), minutes=180)
    chosen = slot.start + timedelta(hours=1, minutes=15)
    piece = uuid.uuid4()  # the slot was carved by another hold meanwhile
    later = replace(
        candidate(now + timedelta(days=4), minutes=180), consultant_id=slot.consultant_id
    )
    fake = FakeBooking(
        clock=dev_env.get_current_time,
        candidates=[slot, later],
        carved_pieces={slot.slot_id: piece},
    )
    request = make_input(
        now,
        duration_minutes=30,
        window_start=chosen,
        window_end=chosen + timedelta(minutes=30),
        requested_start=chosen,
        preferred_consultant_id=slot.consultant_id,
        start_interval_minutes=15,
    )
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        offered = await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await confirm(handle, slot)
        moved_to = later.start + timedelta(minutes=45)
        moved = await handle.execute_update(
            ConsultationWorkflow.reschedule,
            RescheduleRequest(
                party=Party.REQUESTER,
                actor_id=request.requester_id,
                slot_id=later.slot_id,
                start=moved_to,
            ),
        )
        await operator_cancel(handle)

    (search, *_) = fake.named(ActivityName.FIND_CANDIDATES)
    assert search.arg.only_consultant_id == slot.consultant_id
    assert search.arg.start_interval_minutes == 15
    first_hold, move_hold = (call.arg for call in fake.named(ActivityName.HOLD_SLOT))
    assert (first_hold.start, first_hold.start_interval_minutes) == (chosen, 15)
    assert offered.held_slot_id == piece
    (reserve,) = fake.named(ActivityName.RESERVE)
    assert (reserve.arg.slot_id, reserve.arg.start) == (piece, chosen)
    assert reserve.arg.end == chosen + timedelta(minutes=30)
    assert move_hold.start == moved_to
    (rescheduled,) = fake.named(ActivityName.RESCHEDULE_SESSION)
    assert (rescheduled.arg.from_slot_id, rescheduled.arg.to_slot_id) == (piece, later.slot_id)
    assert (moved.session_start, moved.session_end) == (moved_to, moved_to + timedelta(minutes=30))


async def test_without_a_chosen_start_any_consultant_may_serve(
    dev_env: WorkflowEnvironment,
) -> None:
    """The binding is the chosen start's: a preferred consultant alone binds nobody."""
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[slot])
    request = make_input(now, preferred_consultant_id=uuid.uuid4())
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await operator_cancel(handle)

    (search,) = fake.named(ActivityName.FIND_CANDIDATES)
    assert search.arg.only_consultant_id is None
    (hold,) = fake.named(ActivityName.HOLD_SLOT)
    assert hold.arg.start is None
