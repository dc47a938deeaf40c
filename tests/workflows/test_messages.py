"""Submit, confirm, decline, cancel, assign and reschedule: the message-driven paths,
on the Temporal dev server (it implements update-with-start; the time-skipping
server does not skip time after one)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.vocabulary import (
    CancellationReason,
    DeclineReason,
    ErrorType,
    MeetingStatus,
    ParticipantRole,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)
from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import (
    UPDATE_ACCEPTED,
    ConsultationHandle,
    count_events,
    event_types,
    expect_rejection,
    keep_history,
    make_input,
    running_worker,
    timings,
    wait_for,
)
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.activity_io import Candidate, ReleaseOutcome
from workflows.contracts.messages import (
    AssignRequest,
    CancelRequest,
    ConfirmRequest,
    DeclineRequest,
    NoShowReport,
    RescheduleRequest,
    SubmitRequest,
)
from workflows.contracts.names import ActivityName, workflow_id_for
from workflows.contracts.workflow_input import ConsultationInput
from workflows.presentation import minute, time_range
from workflows.search_attributes import (
    BOOKING_STATUS,
    CONSULTANT_ID,
    REQUESTER_ID,
    SERVICE_TYPE_ID,
    SESSION_START,
)
from workflows.start import start_operation, static_summary

HAPPY_PATH_EVENT_BUDGET = 40


async def submit(
    env: WorkflowEnvironment, request: ConsultationInput, task_queue: str
) -> ConsultationHandle:
    operation = start_operation(request, task_queue=task_queue)
    submitted = await env.client.execute_update_with_start_workflow(
        ConsultationWorkflow.submit, SubmitRequest(), start_workflow_operation=operation
    )
    assert submitted.request_id == request.request_id
    return await operation.workflow_handle()


async def confirm(handle: ConsultationHandle, slot: Candidate) -> None:
    await wait_for(
        handle,
        lambda d: (
            d.status is RequestStatus.PENDING_CONFIRMATION
            and d.assigned_consultant_id == slot.consultant_id
        ),
    )
    booked = await handle.execute_update(
        ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
    )
    assert booked.status is RequestStatus.SCHEDULED


async def operator_cancel(handle: ConsultationHandle) -> None:
    await handle.execute_update(
        ConsultationWorkflow.cancel,
        CancelRequest(party=Party.OPERATOR, actor_id=uuid.uuid4(), reason=CancellationReason.OTHER),
    )


async def test_submit_returns_the_stored_request_and_is_idempotent(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    fake = FakeBooking(clock=dev_env.get_current_time)
    request = make_input(now)
    async with running_worker(dev_env.client, fake) as task_queue:
        first = await dev_env.client.execute_update_with_start_workflow(
            ConsultationWorkflow.submit,
            SubmitRequest(),
            start_workflow_operation=start_operation(request, task_queue=task_queue),
        )
        again = await dev_env.client.execute_update_with_start_workflow(
            ConsultationWorkflow.submit,
            SubmitRequest(),
            start_workflow_operation=start_operation(request, task_queue=task_queue),
        )
        handle: ConsultationHandle = dev_env.client.get_workflow_handle_for(
            ConsultationWorkflow.run, workflow_id_for(request.request_id)
        )
        await operator_cancel(handle)
        result = await handle.result()

    assert first.status is RequestStatus.PENDING_ASSIGNMENT
    assert first.requested_at is not None
    assert again.request_id == first.request_id
    assert again.requested_at == first.requested_at
    (persist,) = fake.named(ActivityName.PERSIST_REQUEST)
    assert persist.arg.idempotency_key == request.idempotency_key
    assert result.status is RequestStatus.CANCELLED
    assert result.status_reason is StatusReason.CANCELLED_BY_OPERATOR
    description = await handle.describe()
    assert await description.static_summary() == static_summary(request)


async def test_a_request_that_cannot_be_stored_fails_its_submit(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    fake = FakeBooking(clock=dev_env.get_current_time, persist_error=ErrorType.INVALID_REQUEST)
    request = make_input(now)
    async with running_worker(dev_env.client, fake) as task_queue:
        operation = start_operation(request, task_queue=task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await dev_env.client.execute_update_with_start_workflow(
                ConsultationWorkflow.submit, SubmitRequest(), start_workflow_operation=operation
            )
        handle = await operation.workflow_handle()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == ErrorType.INVALID_REQUEST
    assert not fake.named(ActivityName.FIND_CANDIDATES)


async def test_decline_moves_on_and_confirm_books_the_session(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    first = candidate(now + timedelta(days=3))
    second = candidate(now + timedelta(days=3, hours=1))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[first, second])
    request = make_input(now)
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        declined = await handle.execute_update(
            ConsultationWorkflow.decline,
            DeclineRequest(
                consultant_id=first.consultant_id, reason=DeclineReason.SCHEDULE_CONFLICT
            ),
        )
        assert declined.attempt == 1
        assert declined.status is RequestStatus.PENDING_ASSIGNMENT
        await confirm(handle, second)
        ready = await wait_for(handle, lambda d: d.meeting_ready)
        assert ready.attempt == 2
        assert ready.session_start == second.start
        assert ready.session_status is SessionStatus.SCHEDULED

        cancelled = await handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(
                party=Party.REQUESTER,
                actor_id=request.requester_id,
                reason=CancellationReason.CHANGE_OF_PLANS,
            ),
        )
        result = await handle.result()

    (release,) = fake.named(ActivityName.RELEASE_HOLD)
    assert release.arg.outcome is ReleaseOutcome.DECLINED
    assert release.arg.decline_reason is DeclineReason.SCHEDULE_CONFLICT
    (reserve,) = fake.named(ActivityName.RESERVE)
    assert reserve.arg.consultant_id == second.consultant_id
    assert reserve.arg.session_id == ready.session_id
    assert cancelled.session_status is SessionStatus.CANCELLED_BY_USER
    assert result.status is RequestStatus.CANCELLED
    assert result.status_reason is StatusReason.CANCELLED_BY_REQUESTER
    (cancel,) = fake.named(ActivityName.CANCEL_SESSION)
    assert cancel.arg.reason is CancellationReason.CHANGE_OF_PLANS
    assert len(fake.named(ActivityName.CANCEL_MEETING)) == 1
    assert not fake.named(ActivityName.REMIND_CONFIRMATION)
    await keep_history(handle, "declined_then_confirmed_then_cancelled")


async def test_invalid_updates_are_rejected_before_anything_is_written(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[slot])
    request = make_input(now)
    stranger = uuid.uuid4()
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        before = await event_types(handle)

        refused: list[tuple[str, object, ErrorType]] = [
            (
                "confirm",
                ConfirmRequest(consultant_id=stranger),
                ErrorType.NOT_ALLOWED,
            ),
            (
                "decline",
                DeclineRequest(consultant_id=stranger, reason=DeclineReason.OTHER),
                ErrorType.NOT_ALLOWED,
            ),
            (
                "cancel",
                CancelRequest(party=Party.REQUESTER, actor_id=stranger),
                ErrorType.NOT_ALLOWED,
            ),
            (
                "cancel",
                CancelRequest(
                    party=Party.CONSULTANT,
                    actor_id=slot.consultant_id,
                    reason=CancellationReason.ILLNESS,
                ),
                ErrorType.NOT_ALLOWED,
            ),
            (
                "assign",
                AssignRequest(operator_id=stranger, consultant_id=stranger),
                ErrorType.INVALID_STATE,
            ),
            (
                "reschedule",
                RescheduleRequest(
                    party=Party.REQUESTER, actor_id=request.requester_id, slot_id=uuid.uuid4()
                ),
                ErrorType.INVALID_STATE,
            ),
            (
                "report_no_show",
                NoShowReport(
                    party=Party.OPERATOR, actor_id=stranger, absent=ParticipantRole.LEARNER
                ),
                ErrorType.INVALID_STATE,
            ),
        ]
        for update, message, error_type in refused:
            await expect_rejection(handle.execute_update(update, message), error_type)

        # A rejected update leaves no trace in the history.
        assert await event_types(handle) == before

        await confirm(handle, slot)
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.cancel,
                CancelRequest(party=Party.CONSULTANT, actor_id=slot.consultant_id),
            ),
            ErrorType.INVALID_REQUEST,
        )
        cancelled = await handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(
                party=Party.CONSULTANT,
                actor_id=slot.consultant_id,
                reason=CancellationReason.ILLNESS,
            ),
        )
        await handle.result()
        accepted = await count_events(handle, UPDATE_ACCEPTED)

    assert cancelled.status is RequestStatus.CANCELLED
    assert cancelled.status_reason is StatusReason.CANCELLED_BY_CONSULTANT
    assert cancelled.session_status is SessionStatus.CANCELLED_BY_CONSULTANT
    assert accepted == 3  # submit, confirm, cancel
    await keep_history(handle, "validated_then_cancelled_by_consultant")


async def test_an_operator_assigns_a_waiting_request(dev_env: WorkflowEnvironment) -> None:
    now = await dev_env.get_current_time()
    fake = FakeBooking(clock=dev_env.get_current_time)
    request = make_input(now)
    chosen = candidate(now + timedelta(days=5))
    operator = uuid.uuid4()
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.next_assignment_retry_at is not None)

        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.assign,
                AssignRequest(operator_id=operator, consultant_id=chosen.consultant_id),
            ),
            ErrorType.NO_FITTING_SLOT,
        )
        fake.candidates.append(chosen)
        await wait_for(handle, lambda d: d.next_assignment_retry_at is not None)
        assigned = await handle.execute_update(
            ConsultationWorkflow.assign,
            AssignRequest(operator_id=operator, consultant_id=chosen.consultant_id),
        )
        assert assigned.status is RequestStatus.PENDING_CONFIRMATION
        assert assigned.assigned_consultant_id == chosen.consultant_id
        assert assigned.attempt == 1

        await operator_cancel(handle)
        result = await handle.result()

    searches = fake.named(ActivityName.FIND_CANDIDATES)
    assert searches[-1].arg.only_consultant_id == chosen.consultant_id
    assert result.status is RequestStatus.CANCELLED
    (cancel,) = fake.named(ActivityName.CANCEL_REQUEST)
    assert cancel.arg.status_reason is StatusReason.CANCELLED_BY_OPERATOR
    await keep_history(handle, "operator_assigns_then_cancels")


async def test_an_operator_assign_a_policy_forbids_is_refused_naming_it(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    fake = FakeBooking(clock=dev_env.get_current_time, policy_refusal="daily_cap")
    request = make_input(now)
    operator, consultant = uuid.uuid4(), uuid.uuid4()
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.next_assignment_retry_at is not None)

        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await handle.execute_update(
                ConsultationWorkflow.assign,
                AssignRequest(operator_id=operator, consultant_id=consultant),
            )
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == ErrorType.SCHEDULING_POLICY.value
        assert cause.details == ("daily_cap",)
        assert "cap of sessions that day" in cause.message
        # Waiting as before: the refusal changed nothing.
        waiting = await handle.query(ConsultationWorkflow.details)
        assert waiting.status is RequestStatus.PENDING_ASSIGNMENT

        await operator_cancel(handle)
        result = await handle.result()

    assert result.status is RequestStatus.CANCELLED
    await keep_history(handle, "operator_assign_refused_by_a_cap")


async def test_an_operator_assign_the_consultants_calendar_forbids_is_refused_naming_it(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    fake = FakeBooking(clock=dev_env.get_current_time, policy_refusal="calendar_busy")
    request = make_input(now)
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.next_assignment_retry_at is not None)

        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.assign,
                AssignRequest(operator_id=uuid.uuid4(), consultant_id=uuid.uuid4()),
            ),
            ErrorType.CONSULTANT_BUSY,
        )
        waiting = await handle.query(ConsultationWorkflow.details)
        await operator_cancel(handle)
        await handle.result()

    assert waiting.status is RequestStatus.PENDING_ASSIGNMENT
    await keep_history(handle, "operator_assign_refused_by_a_calendar")


async def test_a_slot_lost_to_another_request_goes_to_the_next_candidate(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    taken = candidate(now + timedelta(days=2))
    free = candidate(now + timedelta(days=2, hours=3))
    fake = FakeBooking(
        clock=dev_env.get_current_time, candidates=[taken, free], lost_slots={taken.slot_id}
    )
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, make_input(now), task_queue)
        asked = await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await operator_cancel(handle)
        await handle.result()

    # Losing a race is not an attempt, and its consultant is not excluded.
    assert asked.assigned_consultant_id == free.consultant_id
    assert asked.attempt == 1
    holds = [call.arg.slot_id for call in fake.named(ActivityName.HOLD_SLOT)]
    assert holds == [taken.slot_id, free.slot_id]


async def test_a_calendar_event_found_since_the_hold_fails_the_confirm_and_moves_on(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    busy = candidate(now + timedelta(days=2))
    free = candidate(now + timedelta(days=2, hours=3))
    fake = FakeBooking(
        clock=dev_env.get_current_time, candidates=[busy, free], busy_at_confirm={busy.slot_id}
    )
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.assigned_consultant_id == busy.consultant_id)

        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=busy.consultant_id)
            ),
            ErrorType.CONSULTANT_BUSY,
        )
        await confirm(handle, free)
        await operator_cancel(handle)
        await handle.result()

    (release,) = fake.named(ActivityName.RELEASE_HOLD)
    assert release.arg.slot_id == busy.slot_id
    assert release.arg.outcome is ReleaseOutcome.CONSULTANT_BUSY
    assert [call.arg.slot_id for call in fake.named(ActivityName.RESERVE)] == [
        busy.slot_id,
        free.slot_id,
    ]
    await keep_history(handle, "calendar_busy_at_confirm_moves_on")


async def test_the_requester_cannot_change_a_session_inside_the_cutoff(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    soon = candidate(now + timedelta(minutes=90))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[soon])
    request = make_input(
        now,
        timings=timings(minimum_notice_seconds=3600, requester_cancel_cutoff_seconds=7200),
    )
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await confirm(handle, soon)
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.cancel,
                CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
            ),
            ErrorType.DEADLINE_PASSED,
        )
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.reschedule,
                RescheduleRequest(
                    party=Party.REQUESTER, actor_id=request.requester_id, slot_id=uuid.uuid4()
                ),
            ),
            ErrorType.DEADLINE_PASSED,
        )
        await operator_cancel(handle)
        result = await handle.result()

    assert result.session_status is SessionStatus.CANCELLED
    assert result.status_reason is StatusReason.CANCELLED_BY_OPERATOR


async def test_reschedule_holds_the_new_slot_and_moves_session_and_meeting(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    booked = candidate(now + timedelta(days=3))
    later = Candidate(
        consultant_id=booked.consultant_id,
        slot_id=uuid.uuid4(),
        start=now + timedelta(days=4),
        end=now + timedelta(days=4, hours=2),
    )
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[booked])
    request = make_input(now)
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await confirm(handle, booked)
        await wait_for(handle, lambda d: d.meeting_ready)
        fake.candidates.append(later)

        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.reschedule,
                RescheduleRequest(
                    party=Party.REQUESTER, actor_id=request.requester_id, slot_id=booked.slot_id
                ),
            ),
            ErrorType.INVALID_REQUEST,
        )
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.reschedule,
                RescheduleRequest(
                    party=Party.REQUESTER, actor_id=request.requester_id, slot_id=uuid.uuid4()
                ),
            ),
            ErrorType.SLOT_UNAVAILABLE,
        )
        moved = await handle.execute_update(
            ConsultationWorkflow.reschedule,
            RescheduleRequest(
                party=Party.REQUESTER, actor_id=request.requester_id, slot_id=later.slot_id
            ),
        )
        # The answer does not wait for the platform: the meeting follows behind.
        assert moved.meeting_status is MeetingStatus.NEEDS_UPDATE
        await wait_for(handle, lambda d: d.meeting_status is MeetingStatus.READY)
        await operator_cancel(handle)
        await handle.result()

    assert moved.status is RequestStatus.SCHEDULED
    assert moved.session_start == later.start
    assert moved.session_end == later.start + timedelta(minutes=60)
    hold = fake.named(ActivityName.HOLD_SLOT)[-1]
    assert hold.arg.slot_id == later.slot_id
    assert hold.arg.assignment is None
    (move,) = fake.named(ActivityName.RESCHEDULE_SESSION)
    assert (move.arg.from_slot_id, move.arg.to_slot_id) == (booked.slot_id, later.slot_id)
    (meeting,) = fake.named(ActivityName.RESCHEDULE_MEETING)
    assert meeting.arg.start == later.start
    # The new slot is held before the session moves off the old one.
    order = fake.names()
    assert order.index(ActivityName.RESCHEDULE_SESSION) > order.index(ActivityName.HOLD_SLOT, 2)
    await keep_history(handle, "rescheduled_then_cancelled")


async def test_the_happy_path_history_stays_small(dev_env: WorkflowEnvironment) -> None:
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[slot])
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, make_input(now), task_queue)
        await confirm(handle, slot)
        await wait_for(handle, lambda d: d.meeting_ready)
        events = await event_types(handle)
        await operator_cancel(handle)
        await handle.result()

    assert len(events) <= HAPPY_PATH_EVENT_BUDGET, len(events)
    assert events[-1] == EventType.EVENT_TYPE_TIMER_STARTED  # waiting for the first reminder
    await keep_history(handle, "happy_path_until_scheduled")


async def test_operators_see_status_consultant_and_details_in_temporal(
    dev_env: WorkflowEnvironment,
) -> None:
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[slot])
    request = make_input(now, service_type_name="Career coaching")
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        asked = await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        waiting = await handle.describe()
        waiting_details = await current_details(handle)
        await confirm(handle, slot)
        await wait_for(handle, lambda d: d.meeting_ready)
        scheduled = await handle.describe()
        scheduled_details = await current_details(handle)
        await operator_cancel(handle)
        await handle.result()

    attributes = waiting.typed_search_attributes
    assert attributes.get(BOOKING_STATUS) == "pending_confirmation"
    assert attributes.get(CONSULTANT_ID) == str(slot.consultant_id)
    assert attributes.get(REQUESTER_ID) == str(request.requester_id)
    assert attributes.get(SERVICE_TYPE_ID) == str(request.service_type_id)
    assert await waiting.static_summary() == static_summary(request)
    assert (await waiting.static_summary() or "").startswith("Career coaching (60 min) for learner")
    assert asked.confirmation_deadline is not None
    deadline = minute(asked.confirmation_deadline, reference=now)
    assert waiting_details.splitlines()[:3] == [
        f"**Waiting for consultant answer until {deadline}**",
        "",
        "- Career coaching (60 min)",
    ]
    assert f"- held: {time_range(slot.start, slot.end, reference=now)}" in waiting_details
    attributes = scheduled.typed_search_attributes
    assert attributes.get(BOOKING_STATUS) == "scheduled"
    assert attributes.get(SESSION_START) == slot.start
    assert scheduled_details.startswith(f"**Session starts {minute(slot.start, reference=now)}**")
    assert "- meeting: ready" in scheduled_details.splitlines()


async def current_details(handle: ConsultationHandle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)
