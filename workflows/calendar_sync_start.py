"""How a starter (the API when a calendar is linked or a sync asked for, the worker's
keeper, the tests) wakes a consultant's calendar sync: signal-with-start, so the one
workflow of the consultant is started if it is not running and told what to sync.

Not imported by workflow code: it uses the client side of the SDK.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from workflows.calendar_sync import CalendarSyncWorkflow
from workflows.contracts.calendar_sync import (
    SYNC_NOW_SIGNAL,
    CalendarSyncInput,
    SyncNow,
    calendar_sync_workflow_id,
)
from workflows.presentation import short_id
from workflows.search_attributes import CONSULTANT_ID

START_TIMEOUT = timedelta(seconds=5)


def static_summary(consultant_id: uuid.UUID) -> str:
    return f"Calendar sync for consultant {short_id(consultant_id)}"


async def wake_calendar_sync(
    client: Client,
    *,
    consultant_id: uuid.UUID,
    task_queue: str,
    interval: timedelta,
    calendar_id: uuid.UUID | None = None,
) -> None:
    """Start the consultant's sync unless it runs, and ask it to sync ``calendar_id``
    now (all their calendars when None). Raises what the client raises."""
    await client.start_workflow(
        CalendarSyncWorkflow.run,
        CalendarSyncInput(consultant_id=consultant_id, interval_seconds=interval.total_seconds()),
        id=calendar_sync_workflow_id(consultant_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=SYNC_NOW_SIGNAL,
        start_signal_args=[SyncNow(calendar_id=calendar_id)],
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(CONSULTANT_ID, str(consultant_id))]
        ),
        static_summary=static_summary(consultant_id),
        rpc_timeout=START_TIMEOUT,
    )
