"""Typed calls from the workflow to its activities, which are referenced by name.

Database transitions are quick, idempotent single transactions, so they run as
local activities: one marker event each instead of three activity events plus a
workflow task, which keeps a request's history small. They retry without limit
(a database outage must not fail a consultation); business failures come back as
non-retryable ``ApplicationError`` and stop the retries. Meeting-platform calls
are remote and slow to recover, so they are ordinary activities. Creating or
moving a meeting is retried until a deadline the workflow derives from the
session's start (``*_until``: the server retries, which costs the history
nothing); only a permanent refusal stops it earlier. Workflows started before
that kept a bounded budget of attempts (``create_meeting``, ``reschedule_meeting``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.contracts.activity_io import (
    CancelRequestInput,
    CancelSessionInput,
    CandidateList,
    ConfirmationReminderInput,
    FindCandidatesInput,
    HoldResult,
    HoldSlotInput,
    MeetingCreated,
    MeetingInput,
    MeetingRef,
    NoShowInput,
    PersistedRequest,
    PersistRequestInput,
    RejectRequestInput,
    ReleaseHoldInput,
    RescheduleSessionInput,
    ReservedSession,
    ReserveInput,
    SessionReminderInput,
    SessionTransitionInput,
)
from workflows.contracts.names import ActivityName

ResultT = TypeVar("ResultT")

DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
DATABASE_TIMEOUT = timedelta(seconds=30)

MEETING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=8,
)
MEETING_TIMEOUT = timedelta(seconds=30)

MEETING_UNTIL_DEADLINE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    # An outage of hours costs the recovering platform one call per session every
    # five minutes; no attempt limit: the schedule-to-close deadline ends it.
    maximum_interval=timedelta(minutes=5),
)


async def _database(name: ActivityName, arg: Any, result_type: type[ResultT]) -> ResultT:
    result: ResultT = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=DATABASE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )
    return result


async def _database_no_result(name: ActivityName, arg: Any) -> None:
    await workflow.execute_local_activity(
        name, arg, start_to_close_timeout=DATABASE_TIMEOUT, retry_policy=DATABASE_RETRY
    )


async def _meeting(name: ActivityName, arg: Any, result_type: type[ResultT]) -> ResultT:
    result: ResultT = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=MEETING_TIMEOUT,
        retry_policy=MEETING_RETRY,
    )
    return result


async def _meeting_until(
    name: ActivityName, arg: MeetingInput, result_type: type[ResultT]
) -> ResultT:
    assert arg.deadline is not None, "a call retried until its deadline needs one"
    remaining = arg.deadline - workflow.now()
    result: ResultT = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=MEETING_TIMEOUT,
        schedule_to_close_timeout=max(remaining, timedelta(seconds=1)),
        retry_policy=MEETING_UNTIL_DEADLINE_RETRY,
    )
    return result


async def persist_request(arg: PersistRequestInput) -> PersistedRequest:
    return await _database(ActivityName.PERSIST_REQUEST, arg, PersistedRequest)


async def find_candidates(arg: FindCandidatesInput) -> CandidateList:
    return await _database(ActivityName.FIND_CANDIDATES, arg, CandidateList)


async def hold_slot(arg: HoldSlotInput) -> HoldResult:
    return await _database(ActivityName.HOLD_SLOT, arg, HoldResult)


async def release_hold(arg: ReleaseHoldInput) -> None:
    await _database_no_result(ActivityName.RELEASE_HOLD, arg)


async def remind_confirmation(arg: ConfirmationReminderInput) -> None:
    await _database_no_result(ActivityName.REMIND_CONFIRMATION, arg)


async def reject_request(arg: RejectRequestInput) -> None:
    await _database_no_result(ActivityName.REJECT_REQUEST, arg)


async def cancel_request(arg: CancelRequestInput) -> None:
    await _database_no_result(ActivityName.CANCEL_REQUEST, arg)


async def reserve(arg: ReserveInput) -> ReservedSession:
    return await _database(ActivityName.RESERVE, arg, ReservedSession)


async def reschedule_session(arg: RescheduleSessionInput) -> None:
    await _database_no_result(ActivityName.RESCHEDULE_SESSION, arg)


async def cancel_session(arg: CancelSessionInput) -> None:
    await _database_no_result(ActivityName.CANCEL_SESSION, arg)


async def send_reminder(arg: SessionReminderInput) -> None:
    await _database_no_result(ActivityName.SEND_REMINDER, arg)


async def start_session(arg: SessionTransitionInput) -> None:
    await _database_no_result(ActivityName.START_SESSION, arg)


async def complete_session(arg: SessionTransitionInput) -> None:
    await _database_no_result(ActivityName.COMPLETE_SESSION, arg)


async def mark_no_show(arg: NoShowInput) -> None:
    await _database_no_result(ActivityName.MARK_NO_SHOW, arg)


async def create_meeting(arg: MeetingInput) -> MeetingCreated:
    return await _meeting(ActivityName.CREATE_MEETING, arg, MeetingCreated)


async def reschedule_meeting(arg: MeetingInput) -> None:
    await _meeting(ActivityName.RESCHEDULE_MEETING, arg, type(None))


async def cancel_meeting(arg: MeetingRef) -> None:
    await _meeting(ActivityName.CANCEL_MEETING, arg, type(None))


async def create_meeting_until(arg: MeetingInput) -> MeetingCreated:
    """Retried until ``arg.deadline``."""
    return await _meeting_until(ActivityName.CREATE_MEETING, arg, MeetingCreated)


async def reschedule_meeting_until(arg: MeetingInput) -> None:
    """Retried until ``arg.deadline``."""
    await _meeting_until(ActivityName.RESCHEDULE_MEETING, arg, type(None))
