"""Helpers shared by the workflow tests: inputs, a worker, waiting, history capture."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.vocabulary import ErrorType
from tests.workflows.fakes import FakeBooking
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import RequestDetails
from workflows.contracts.names import workflow_id_for
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings
from workflows.start import initial_search_attributes, static_summary

HISTORIES = Path(__file__).parent / "histories"
CHECKOUT = f"{Path(__file__).resolve().parents[2]}/"
RECORD_HISTORIES = os.environ.get("BOOKING_RECORD_HISTORIES") == "1"
"""Set ``BOOKING_RECORD_HISTORIES=1`` to rewrite the committed replay histories."""

HOUR = 3600.0

DEFAULT_TIMINGS = LifecycleTimings(
    confirmation_timeout_seconds=24 * HOUR,
    confirmation_reminder_before_seconds=2 * HOUR,
    assignment_retry_interval_seconds=0.25 * HOUR,
    max_attempts=3,
    minimum_notice_seconds=2 * HOUR,
    hold_ttl_seconds=25 * HOUR,
    reminder_offsets_seconds=(24 * HOUR, 1 * HOUR),
    no_show_grace_seconds=600,
    no_show_report_window_seconds=24 * HOUR,
    requester_cancel_cutoff_seconds=2 * HOUR,
)

ConsultationHandle = WorkflowHandle[ConsultationWorkflow, RequestDetails]


def make_input(now: datetime, **changes: Any) -> ConsultationInput:
    """A request for a 60-minute session in the two weeks after ``now``."""
    timings = changes.pop("timings", DEFAULT_TIMINGS)
    request = ConsultationInput(
        request_id=uuid.uuid4(),
        requester_id=uuid.uuid4(),
        service_type_id=uuid.uuid4(),
        duration_minutes=60,
        window_start=now,
        window_end=now + timedelta(days=14),
        timings=timings,
        idempotency_key=f"key-{uuid.uuid4()}",
    )
    return replace(request, **changes)


def timings(**changes: Any) -> LifecycleTimings:
    return replace(DEFAULT_TIMINGS, **changes)


@asynccontextmanager
async def running_worker(client: Client, fake: FakeBooking) -> AsyncIterator[str]:
    """A worker on a fresh task queue with the fake activities; yields the queue."""
    task_queue = f"consultations-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ConsultationWorkflow],
        activities=fake.activities(),
    ):
        yield task_queue


async def start(client: Client, request: ConsultationInput, task_queue: str) -> ConsultationHandle:
    """A plain start: the time-skipping server does not skip time after an
    update-with-start, so the timer tests start without the submit update."""
    return await client.start_workflow(
        ConsultationWorkflow.run,
        request,
        id=workflow_id_for(request.request_id),
        task_queue=task_queue,
        search_attributes=initial_search_attributes(request),
        static_summary=static_summary(request),
    )


WAIT_LIMIT = 15.0


async def wait_for(
    handle: ConsultationHandle, condition: Callable[[RequestDetails], bool]
) -> RequestDetails:
    """Poll the details query until ``condition`` holds (the workflow state cannot
    be awaited from outside any other way); fail after ``WAIT_LIMIT`` seconds."""
    details = await handle.query(ConsultationWorkflow.details)
    try:
        async with asyncio.timeout(WAIT_LIMIT):
            while not condition(details):
                await asyncio.sleep(0.05)
                details = await handle.query(ConsultationWorkflow.details)
    except TimeoutError:
        raise AssertionError(f"condition never held; last details: {details}") from None
    return details


async def event_types(handle: ConsultationHandle) -> list[int]:
    return [event.event_type async for event in handle.fetch_history_events()]


async def count_events(handle: ConsultationHandle, event_type: int) -> int:
    return sum(1 for kind in await event_types(handle) if kind == event_type)


UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


async def keep_history(handle: ConsultationHandle, path: str) -> None:
    """Store the history for the replay test when asked to (see ``RECORD_HISTORIES``)."""
    if not RECORD_HISTORIES:
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    # Stack traces name files by absolute path: this checkout's path stays out of them.
    recorded = history.to_json().replace(CHECKOUT, "/app/")
    (HISTORIES / f"{path}.json").write_text(recorded)


async def server_clock(env: WorkflowEnvironment) -> datetime:
    return await env.get_current_time()


async def expect_rejection(call: Awaitable[Any], error_type: ErrorType) -> None:
    """The update must fail with an ``ApplicationError`` of ``error_type``."""
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == error_type.value, cause
