"""Every timer path of the consultation workflow, on the time-skipping test server."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from core.vocabulary import (
    CancellationReason,
    ErrorType,
    ParticipantRole,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)
from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import (
    expect_rejection,
    keep_history,
    make_input,
    running_worker,
    start,
    timings,
    wait_for,
)
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.activity_io import ReleaseOutcome
from workflows.contracts.messages import (
    CancelRequest,
    ConfirmRequest,
    MeetingEnded,
    MeetingStarted,
    NoShowReport,
    ParticipantJoined,
)
from workflows.contracts.names import ActivityName

TOLERANCE = timedelta(minutes=1)


def near(actual: datetime | None, expected: datetime) -> bool:
    return actual is not None and abs(actual - expected) <= TOLERANCE


async def test_confirmation_timeout_moves_on_to_the_next_candidate(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    first = candidate(now + timedelta(days=3))
    second = candidate(now + timedelta(days=3, hours=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[first, second])
    request = make_input(now)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, request, task_queue)
        asked = await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        assert asked.assigned_consultant_id == first.consultant_id
        assert asked.attempt == 1
        assert asked.confirmation_deadline is not None
        deadline = asked.confirmation_deadline
        assert near(deadline, now + timedelta(hours=24))

        await env.sleep(timedelta(hours=24, minutes=5))
        moved = await wait_for(handle, lambda d: d.attempt == 2)

        assert moved.status is RequestStatus.PENDING_CONFIRMATION
        assert moved.assigned_consultant_id == second.consultant_id
        (reminder,) = fake.named(ActivityName.REMIND_CONFIRMATION)[:1]
        assert reminder.arg.consultant_id == first.consultant_id
        assert near(reminder.at, deadline - timedelta(hours=2))
        (release,) = fake.named(ActivityName.RELEASE_HOLD)
        assert release.arg.outcome is ReleaseOutcome.CONFIRMATION_EXPIRED
        assert release.arg.consultant_id == first.consultant_id
        assert near(release.at, deadline)
        assert fake.named(ActivityName.FIND_CANDIDATES)[-1].arg.excluded_consultant_ids == (
            first.consultant_id,
        )
        # The timed-out consultant can no longer answer.
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=first.consultant_id)
            ),
            ErrorType.NOT_ALLOWED,
        )

        await handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
        )
        result = await handle.result()
        assert result.status is RequestStatus.CANCELLED
        await keep_history(handle, "confirmation_timeout_reassigns")


async def test_rejected_when_every_attempt_times_out(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    consultants = [candidate(now + timedelta(days=4, hours=hour)) for hour in range(3)]
    fake = FakeBooking(clock=env.get_current_time, candidates=consultants)
    request = make_input(now, timings=timings(max_attempts=2))
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, request, task_queue)
        result = await handle.result()

    assert result.status is RequestStatus.REJECTED
    assert result.status_reason is StatusReason.ATTEMPTS_EXHAUSTED
    assert result.attempt == 2
    assert near(result.finished_at, now + timedelta(hours=48))
    releases = fake.named(ActivityName.RELEASE_HOLD)
    assert [call.arg.consultant_id for call in releases] == [
        consultants[0].consultant_id,
        consultants[1].consultant_id,
    ]
    assert {call.arg.outcome for call in releases} == {ReleaseOutcome.CONFIRMATION_EXPIRED}
    (reject,) = fake.named(ActivityName.REJECT_REQUEST)
    assert reject.arg.reason is StatusReason.ATTEMPTS_EXHAUSTED
    held = {call.arg.slot_id for call in fake.named(ActivityName.HOLD_SLOT)}
    assert consultants[2].slot_id not in held
    await keep_history(handle, "attempts_exhausted_rejected")


async def test_rejected_with_no_consultant_available_when_the_window_closes(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    fake = FakeBooking(clock=env.get_current_time)
    # 4 h window, 60 min session, 2 h notice: nothing can fit after now + 1 h.
    request = make_input(now, window_end=now + timedelta(hours=4))
    closes_at = now + timedelta(hours=1)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, request, task_queue)
        waiting = await wait_for(handle, lambda d: d.next_assignment_retry_at is not None)
        assert waiting.status is RequestStatus.PENDING_ASSIGNMENT
        assert waiting.assignment_closes_at == closes_at
        result = await handle.result()

    assert result.status is RequestStatus.REJECTED
    assert result.status_reason is StatusReason.NO_CONSULTANT_AVAILABLE
    assert near(result.finished_at, closes_at)
    searches = fake.named(ActivityName.FIND_CANDIDATES)
    # One search at the start, then one per 15-minute retry until the window closes.
    assert len(searches) == 4
    assert [near(call.at, now + timedelta(minutes=15 * i)) for i, call in enumerate(searches)] == [
        True
    ] * 4
    (reject,) = fake.named(ActivityName.REJECT_REQUEST)
    assert reject.arg.reason is StatusReason.NO_CONSULTANT_AVAILABLE
    await keep_history(handle, "no_candidate_rejected_at_window_close")


async def test_reminders_start_and_completion_follow_the_session_clock(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot])
    request = make_input(now)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, request, task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        booked = await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        assert booked.status is RequestStatus.SCHEDULED
        assert booked.session_start == slot.start
        result = await handle.result()

    assert result.status is RequestStatus.COMPLETED
    assert result.session_status is SessionStatus.COMPLETED
    reminders = fake.named(ActivityName.SEND_REMINDER)
    assert [call.arg.offset_seconds for call in reminders] == [24 * 3600, 3600]
    assert near(reminders[0].at, slot.start - timedelta(hours=24))
    assert near(reminders[1].at, slot.start - timedelta(hours=1))
    (started,) = fake.named(ActivityName.START_SESSION)
    assert near(started.at, slot.start)
    (completed,) = fake.named(ActivityName.COMPLETE_SESSION)
    assert near(completed.at, slot.end)
    assert completed.arg.attendance.meeting_ended_at is None
    # The workflow stays open for no-show reports until the window after the end.
    assert near(result.finished_at, slot.end + timedelta(hours=24))
    assert not fake.named(ActivityName.REMIND_CONFIRMATION)
    await keep_history(handle, "scheduled_reminders_completed")


async def test_missing_consultant_is_an_automatic_no_show(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot], reports_attendance=True)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        await handle.signal(
            ConsultationWorkflow.participant_joined,
            ParticipantJoined(role=ParticipantRole.LEARNER, occurred_at=slot.start),
        )
        result = await handle.result()

    assert result.status is RequestStatus.COMPLETED
    assert result.status_reason is StatusReason.NO_SHOW_CONSULTANT
    assert result.session_status is SessionStatus.NO_SHOW_CONSULTANT
    (no_show,) = fake.named(ActivityName.MARK_NO_SHOW)
    assert no_show.arg.absent is ParticipantRole.CONSULTANT
    assert no_show.arg.reported_by is Party.SYSTEM
    assert no_show.arg.attendance.learner_joined_at == slot.start
    assert near(no_show.at, slot.start + timedelta(minutes=10))
    assert not fake.named(ActivityName.COMPLETE_SESSION)
    await keep_history(handle, "automatic_no_show_consultant")


async def test_missing_learner_is_an_automatic_no_show(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot], reports_attendance=True)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        await handle.signal(
            ConsultationWorkflow.participant_joined,
            ParticipantJoined(role=ParticipantRole.CONSULTANT, occurred_at=slot.start),
        )
        result = await handle.result()

    assert result.session_status is SessionStatus.NO_SHOW_USER
    assert result.status_reason is StatusReason.NO_SHOW_USER
    (no_show,) = fake.named(ActivityName.MARK_NO_SHOW)
    assert no_show.arg.absent is ParticipantRole.LEARNER
    await keep_history(handle, "automatic_no_show_learner")


async def test_platform_signals_start_and_end_the_session(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot], reports_attendance=True)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        early = slot.start - timedelta(minutes=5)
        await env.sleep(early - await env.get_current_time())
        await handle.signal(ConsultationWorkflow.meeting_started, MeetingStarted(occurred_at=early))
        for role in ParticipantRole:
            await handle.signal(
                ConsultationWorkflow.participant_joined,
                ParticipantJoined(role=role, occurred_at=early),
            )
        await wait_for(handle, lambda d: d.session_status is SessionStatus.IN_PROGRESS)
        ended = slot.start + timedelta(minutes=40)
        await env.sleep(ended - await env.get_current_time())
        await handle.signal(ConsultationWorkflow.meeting_ended, MeetingEnded(occurred_at=ended))
        await wait_for(handle, lambda d: d.session_status is SessionStatus.COMPLETED)
        result = await handle.result()

    assert result.status is RequestStatus.COMPLETED
    assert result.status_reason is None
    (started,) = fake.named(ActivityName.START_SESSION)
    assert near(started.at, early)
    (completed,) = fake.named(ActivityName.COMPLETE_SESSION)
    assert near(completed.at, ended)
    attendance = completed.arg.attendance
    assert attendance.meeting_started_at == early
    assert attendance.meeting_ended_at == ended
    assert attendance.learner_joined_at == attendance.consultant_joined_at == early
    assert not fake.named(ActivityName.MARK_NO_SHOW)
    await keep_history(handle, "platform_signals_start_and_end")


async def test_consultant_reports_a_learner_no_show_after_the_session(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot])
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        await env.sleep(slot.end + timedelta(hours=2) - await env.get_current_time())
        await wait_for(handle, lambda d: d.session_status is SessionStatus.COMPLETED)
        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.report_no_show,
                NoShowReport(
                    party=Party.CONSULTANT,
                    actor_id=slot.consultant_id,
                    absent=ParticipantRole.CONSULTANT,
                ),
            ),
            ErrorType.NOT_ALLOWED,
        )
        reported = await handle.execute_update(
            ConsultationWorkflow.report_no_show,
            NoShowReport(
                party=Party.CONSULTANT, actor_id=slot.consultant_id, absent=ParticipantRole.LEARNER
            ),
        )
        assert reported.session_status is SessionStatus.NO_SHOW_USER
        result = await handle.result()

    assert result.status is RequestStatus.COMPLETED
    assert result.status_reason is StatusReason.NO_SHOW_USER
    (no_show,) = fake.named(ActivityName.MARK_NO_SHOW)
    assert no_show.arg.reported_by is Party.CONSULTANT
    assert no_show.arg.actor_id == slot.consultant_id
    await keep_history(handle, "reported_no_show_after_session")


async def test_meeting_platform_failure_cancels_the_booking(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    slot = candidate(now + timedelta(days=2))
    fake = FakeBooking(clock=env.get_current_time, candidates=[slot], meeting_fails=True)
    async with running_worker(env.client, fake) as task_queue:
        handle = await start(env.client, make_input(now), task_queue)
        await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=slot.consultant_id)
        )
        result = await handle.result()

    assert result.status is RequestStatus.CANCELLED
    assert result.status_reason is StatusReason.MEETING_PLATFORM_FAILURE
    assert result.session_status is SessionStatus.CANCELLED
    (cancelled,) = fake.named(ActivityName.CANCEL_SESSION)
    assert cancelled.arg.party is Party.SYSTEM
    assert cancelled.arg.reason is CancellationReason.MEETING_PLATFORM_FAILURE
    assert not fake.named(ActivityName.CANCEL_MEETING)
    assert not fake.named(ActivityName.SEND_REMINDER)
    await keep_history(handle, "meeting_failure_compensated")
