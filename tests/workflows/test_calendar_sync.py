"""The per-consultant calendar sync as a workflow, with fake activities: periodic
rounds, "sync now" for one calendar, continuing as new, ending once no calendar is
left; and the real thing on the dev server, woken by linking a calendar through the
API (signal-with-start), against an ICS server on loopback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.vocabulary import CalendarSyncOutcome
from tests.workflows.support import HISTORIES, RECORD_HISTORIES
from workflows.calendar_sync import CalendarSyncWorkflow
from workflows.calendar_sync_start import wake_calendar_sync
from workflows.contracts.calendar_sync import (
    CalendarActivity,
    CalendarList,
    CalendarSyncInput,
    CalendarSyncSummary,
    ListCalendarsInput,
    SyncCalendarInput,
    SyncCalendarResult,
    calendar_sync_workflow_id,
)

CALENDAR_HISTORIES = HISTORIES / "calendar_sync"
INTERVAL = 900.0
WAIT_LIMIT = 15.0


@dataclass
class FakeCalendars:
    """The consultant's calendars as the activities see them; ``failing`` ones fail."""

    calendars: list[uuid.UUID]
    failing: set[uuid.UUID] = field(default_factory=set)
    synced: list[uuid.UUID] = field(default_factory=list)

    @activity.defn(name=CalendarActivity.LIST_CALENDARS)
    async def list_calendars(self, arg: ListCalendarsInput) -> CalendarList:
        return CalendarList(calendar_ids=tuple(self.calendars))

    @activity.defn(name=CalendarActivity.SYNC_CALENDAR)
    async def sync_calendar(self, arg: SyncCalendarInput) -> SyncCalendarResult:
        self.synced.append(arg.calendar_id)
        failed = arg.calendar_id in self.failing
        return SyncCalendarResult(
            calendar_id=arg.calendar_id,
            outcome=CalendarSyncOutcome.FAILED if failed else CalendarSyncOutcome.UPDATED,
            busy_intervals=3,
        )

    def activities(self) -> list[Callable[..., object]]:
        return [self.list_calendars, self.sync_calendar]


@pytest.fixture
def worker_for(time_skipping_env: WorkflowEnvironment) -> Callable[[FakeCalendars], Worker]:
    def build(fake: FakeCalendars) -> Worker:
        return Worker(
            time_skipping_env.client,
            task_queue=f"calendars-{uuid.uuid4()}",
            workflows=[CalendarSyncWorkflow],
            activities=fake.activities(),
        )

    return build


async def _wake(client: Client, worker: Worker, consultant: uuid.UUID, **kw: object) -> None:
    await wake_calendar_sync(
        client,
        consultant_id=consultant,
        task_queue=worker.task_queue,
        interval=timedelta(seconds=INTERVAL),
        **kw,  # type: ignore[arg-type]
    )


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():  # noqa: ASYNC110  (the fake's state, set by its activities)
            await asyncio.sleep(0.05)


async def keep_history(handle: WorkflowHandle[object, object], name: str) -> None:
    """Store the first run's history for the replay test when asked to."""
    if not RECORD_HISTORIES:
        return
    history = await handle.fetch_history()
    CALENDAR_HISTORIES.mkdir(parents=True, exist_ok=True)
    (CALENDAR_HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_every_calendar_is_synced_each_interval_until_none_is_left(
    time_skipping_env: WorkflowEnvironment, worker_for: Callable[[FakeCalendars], Worker]
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    fake = FakeCalendars([first, second], failing={second})
    consultant = uuid.uuid4()
    client = time_skipping_env.client
    async with worker_for(fake) as worker:
        await _wake(client, worker, consultant)
        handle = client.get_workflow_handle(
            calendar_sync_workflow_id(consultant), result_type=CalendarSyncSummary
        )
        await _until(lambda: len(fake.synced) >= 2)
        await time_skipping_env.sleep(INTERVAL * 2 + 60)  # two more rounds
        await _until(lambda: len(fake.synced) >= 6)
        assert fake.synced[:6] == [first, second] * 3

        fake.calendars.clear()  # both unlinked
        await time_skipping_env.sleep(INTERVAL + 60)  # the next round finds none
        summary = await handle.result()
        assert summary.outcomes[CalendarSyncOutcome.FAILED] >= 3
        assert summary.outcomes[CalendarSyncOutcome.UPDATED] >= 3
        await keep_history(handle, "synced_each_interval_then_ended")


async def test_sync_now_syncs_the_calendar_asked_for_at_once(
    time_skipping_env: WorkflowEnvironment, worker_for: Callable[[FakeCalendars], Worker]
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    fake = FakeCalendars([first, second])
    consultant = uuid.uuid4()
    client = time_skipping_env.client
    async with worker_for(fake) as worker:
        await _wake(client, worker, consultant)
        await _until(lambda: len(fake.synced) == 2)
        await _wake(client, worker, consultant, calendar_id=second)  # POST …/sync
        await _until(lambda: len(fake.synced) == 3)
        assert fake.synced == [first, second, second]
        handle = client.get_workflow_handle(calendar_sync_workflow_id(consultant))
        fake.calendars.clear()
        await time_skipping_env.sleep(INTERVAL + 60)
        await handle.result()
        await keep_history(handle, "sync_now_for_one_calendar")


async def test_a_long_run_continues_as_new_and_keeps_syncing(
    time_skipping_env: WorkflowEnvironment, worker_for: Callable[[FakeCalendars], Worker]
) -> None:
    calendar = uuid.uuid4()
    fake = FakeCalendars([calendar])
    consultant = uuid.uuid4()
    client = time_skipping_env.client
    async with worker_for(fake) as worker:
        await client.start_workflow(
            CalendarSyncWorkflow.run,
            CalendarSyncInput(
                consultant_id=consultant, interval_seconds=INTERVAL, rounds_per_run=2
            ),
            id=calendar_sync_workflow_id(consultant),
            task_queue=worker.task_queue,
        )
        first_run = client.get_workflow_handle(calendar_sync_workflow_id(consultant))
        first_run_id = (await first_run.describe()).run_id
        await time_skipping_env.sleep(INTERVAL * 3 + 60)
        await _until(lambda: len(fake.synced) >= 4)
        history = await client.get_workflow_handle(
            calendar_sync_workflow_id(consultant), run_id=first_run_id
        ).fetch_history()
        kinds = [event.event_type for event in history.events]
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW in kinds
        fake.calendars.clear()
        await time_skipping_env.sleep(INTERVAL + 60)
        await first_run.result()
        if RECORD_HISTORIES:
            CALENDAR_HISTORIES.mkdir(parents=True, exist_ok=True)
            path = CALENDAR_HISTORIES / "continued_as_new_after_two_rounds.json"
            path.write_text(history.to_json())


def test_the_calendar_histories_are_committed() -> None:
    assert len(list(Path(CALENDAR_HISTORIES).glob("*.json"))) >= 3
