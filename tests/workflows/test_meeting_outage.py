"""A meeting-platform outage, on the time-skipping test server: the session keeps its
clock and stays booked while the meeting is retried, and is cancelled only when it
could not happen (no meeting by the deadline before its start)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from core.vocabulary import (
    CancellationReason,
    MeetingStatus,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)
from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import (
    DEFAULT_TIMINGS,
    ConsultationHandle,
    keep_history,
    make_input,
    running_worker,
    start,
    wait_for,
)
from tests.workflows.test_timers import near
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.activity_io import Candidate
from workflows.contracts.messages import ConfirmRequest, RescheduleRequest
from workflows.contracts.names import ActivityName
from workflows.search_attributes import MEETING_STATUS

DEADLINE_BEFORE_START = timedelta(seconds=DEFAULT_TIMINGS.meeting_deadline_before_start_seconds)
FOREVER = timedelta(days=365)


async def meeting_status_attribute(handle: ConsultationHandle) -> str | None:
    return (await handle.describe()).typed_search_attributes.get(MEETING_STATUS)


async def book(handle: ConsultationHandle, slot: Candidate) -> None:
    await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
    await handle.execute_update(
        ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
    )


async def test_an_outage_shorter_than_the_deadline_leaves_the_session_booked(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=1, hours=2))  # its 24 h reminder is due in 2 h
    back_at = now + timedelta(hours=3)
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot], platform_down_until=back_at)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await book(handle, slot)
        booked = await wait_for(handle, lambda d: d.session_id is not None)
        assert booked.status is RequestStatus.SCHEDULED
        assert booked.meeting_status is MeetingStatus.PENDING
        assert booked.meeting_deadline == slot.start - DEADLINE_BEFORE_START
        assert await meeting_status_attribute(handle) == MeetingStatus.PENDING
        result = await handle.result()
        ready_at_the_end = await meeting_status_attribute(handle)

    assert result.status is RequestStatus.COMPLETED
    assert result.session_status is SessionStatus.COMPLETED
    assert result.meeting_status is MeetingStatus.READY
    assert ready_at_the_end == MeetingStatus.READY
    assert not fake.named(ActivityName.CANCEL_SESSION)
    creates = fake.named(ActivityName.CREATE_MEETING)
    assert len(creates) > 2  # retried through the outage ...
    assert all(call.at < back_at for call in creates[:-1])
    assert back_at <= creates[-1].at <= back_at + timedelta(minutes=5)  # ... until it ended
    # The session's clock ran on meanwhile: the first reminder went out during the outage.
    reminders = fake.named(ActivityName.SEND_REMINDER)
    assert [call.arg.offset_seconds for call in reminders] == [24 * 3600, 3600]
    assert reminders[0].at < back_at
    (started,) = fake.named(ActivityName.START_SESSION)
    assert near(started.at, slot.start)
    await keep_history(handle, "meeting_outage_outlasted")


async def test_an_outage_past_the_deadline_cancels_the_session(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(hours=5))
    fake = FakeBooking(
        clock=env.get_current_time, candidates=[slot], platform_down_until=now + FOREVER
    )
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await book(handle, slot)
        result = await handle.result()

    deadline = slot.start - DEADLINE_BEFORE_START
    assert result.status is RequestStatus.CANCELLED
    assert result.status_reason is StatusReason.MEETING_PLATFORM_FAILURE
    assert result.session_status is SessionStatus.CANCELLED
    (cancelled,) = fake.named(ActivityName.CANCEL_SESSION)
    assert cancelled.arg.party is Party.SYSTEM
    assert cancelled.arg.reason is CancellationReason.MEETING_PLATFORM_FAILURE
    assert near(cancelled.at, deadline)
    assert len(fake.named(ActivityName.CREATE_MEETING)) > 2
    # Reminders before the deadline went out as usual; the session never started.
    (reminder,) = fake.named(ActivityName.SEND_REMINDER)
    assert reminder.arg.offset_seconds == 3600
    assert not fake.named(ActivityName.START_SESSION)
    await keep_history(handle, "meeting_outage_past_deadline_cancelled")


async def test_a_failing_meeting_move_leaves_the_session_moved_and_scheduled(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(hours=4))
    later = Candidate(
        consultant_id=slot.consultant_id,
        slot_id=uuid.uuid4(),
        start=now + timedelta(hours=6),
        end=now + timedelta(hours=8),
    )
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot])
    request = make_input(now)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, request, task_queue)
        await book(handle, slot)
        await wait_for(handle, lambda d: d.meeting_status is MeetingStatus.READY)
        fake.candidates.append(later)
        fake.platform_down_until = now + FOREVER

        moved = await handle.execute_update(
            ConsultationWorkflow.reschedule,
            RescheduleRequest(
                party=Party.REQUESTER, actor_id=request.requester_id, slot_id=later.slot_id
            ),
        )
        assert moved.status is RequestStatus.SCHEDULED
        assert moved.session_start == later.start
        assert moved.meeting_status is MeetingStatus.NEEDS_UPDATE
        assert await meeting_status_attribute(handle) == MeetingStatus.NEEDS_UPDATE
        result = await handle.result()

    assert result.status is RequestStatus.COMPLETED
    assert result.session_status is SessionStatus.COMPLETED
    assert result.session_start == later.start
    assert not fake.named(ActivityName.CANCEL_SESSION)
    moves = fake.named(ActivityName.RESCHEDULE_MEETING)
    assert len(moves) > 2
    assert {call.arg.start for call in moves} == {later.start}
    assert all(call.at <= later.start for call in moves)  # tried until the session started
    (started,) = fake.named(ActivityName.START_SESSION)
    assert near(started.at, later.start)
    await keep_history(handle, "meeting_move_failing_session_kept")
