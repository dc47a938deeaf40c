"""The retention sweep as it runs in production: a Temporal Schedule that ``booking
setup`` creates (or updates) starts ``RetentionSweepWorkflow``, whose activity removes
due rows in batches; ``booking setup`` also sets how long the namespace keeps closed
workflows. On the dev server, with the real activity on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.retention import RetentionActivities
from booking.retention_setup import (
    ensure_retention_schedule,
    namespace_retention,
    set_namespace_retention,
)
from core.settings import Settings
from core.vocabulary import RetentionKind
from db.models import InboundWebhookEvent
from tests.support.aged_rows import AgedRows, ago
from workflows.contracts.retention import SCHEDULE_ID, RetentionPolicy
from workflows.retention import RetentionSweepWorkflow

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
def sweep_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "temporal_task_queue": f"retention-{uuid.uuid4()}",
            "retention_inbound_events": timedelta(days=30),
            "retention_batch_size": 2,
        }
    )


@pytest.fixture
async def sweeper(
    dev_env: WorkflowEnvironment, sweep_settings: Settings, session_factory: SessionFactory
) -> AsyncIterator[Client]:
    """A worker running the sweep on the settings' task queue."""
    async with Worker(
        dev_env.client,
        task_queue=sweep_settings.temporal_task_queue,
        workflows=[RetentionSweepWorkflow],
        activities=[RetentionActivities(session_factory).sweep_batch],
    ):
        yield dev_env.client


@pytest.fixture
async def no_schedule(dev_env: WorkflowEnvironment) -> AsyncIterator[None]:
    """The schedule's id is fixed: leave none behind for the next test."""
    yield
    await dev_env.client.get_schedule_handle(SCHEDULE_ID).delete()


async def _inbound_ids(sessions: SessionFactory) -> set[uuid.UUID]:
    async with sessions() as session:
        return set((await session.scalars(select(InboundWebhookEvent.id))).all())


@pytest.mark.usefixtures("no_schedule")
async def test_setup_creates_the_schedule_then_brings_it_up_to_date(
    dev_env: WorkflowEnvironment, sweep_settings: Settings
) -> None:
    client = dev_env.client
    assert await ensure_retention_schedule(client, sweep_settings) is True

    described = await client.get_schedule_handle(SCHEDULE_ID).describe()
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(hours=1)]
    assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "RetentionSweepWorkflow"
    assert action.task_queue == sweep_settings.temporal_task_queue

    changed = sweep_settings.model_copy(
        update={
            "retention_sweep_interval": timedelta(minutes=10),
            "retention_meeting_links": timedelta(days=3),
        }
    )
    assert await ensure_retention_schedule(client, changed) is False
    described = await client.get_schedule_handle(SCHEDULE_ID).describe()
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(minutes=10)]
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    (policy,) = await client.data_converter.decode(action.args, [RetentionPolicy])
    assert policy == RetentionPolicy.from_settings(changed)


async def test_setup_sets_how_long_closed_workflows_are_kept(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    before = await namespace_retention(client, client.namespace)
    try:
        await set_namespace_retention(client, client.namespace, timedelta(days=3))
        assert await namespace_retention(client, client.namespace) == timedelta(days=3)
    finally:
        await set_namespace_retention(client, client.namespace, before)


@pytest.mark.usefixtures("no_schedule")
async def test_a_scheduled_run_removes_what_is_due(
    sweeper: Client, sweep_settings: Settings, session_factory: SessionFactory
) -> None:
    aged = AgedRows(session_factory)
    await aged.inbound_events(5, received=ago(days=31))
    recent = await aged.inbound_events(2, received=ago(days=29))
    await ensure_retention_schedule(sweeper, sweep_settings)

    schedule = sweeper.get_schedule_handle(SCHEDULE_ID)
    await schedule.trigger()
    started = None
    async with asyncio.timeout(10):
        while started is None:
            recent_actions = (await schedule.describe()).info.recent_actions
            if recent_actions:
                started = recent_actions[-1].action
            else:
                await asyncio.sleep(0.05)  # the schedule's start cannot be awaited
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    run = sweeper.get_workflow_handle_for(
        RetentionSweepWorkflow.run, started.workflow_id, run_id=started.first_execution_run_id
    )
    report = await run.result()

    assert report.removed[RetentionKind.INBOUND_EVENTS] == 5
    assert await _inbound_ids(session_factory) == set(recent)


async def test_a_long_backlog_is_worked_off_across_runs(
    sweeper: Client, sweep_settings: Settings, session_factory: SessionFactory
) -> None:
    """Batches of two, two batches a run: nine due rows take three runs, each one
    continuing as new where the last stopped."""
    aged = AgedRows(session_factory)
    await aged.inbound_events(9, received=ago(days=31))
    policy = RetentionPolicy.from_settings(sweep_settings)
    policy = RetentionPolicy(keep_seconds=policy.keep_seconds, batch_size=2, max_batches_per_run=2)
    handle = await sweeper.start_workflow(
        RetentionSweepWorkflow.run,
        policy,
        id=f"retention-sweep-{uuid.uuid4()}",
        task_queue=sweep_settings.temporal_task_queue,
    )
    report = await handle.result()

    assert await _inbound_ids(session_factory) == set()
    first = sweeper.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    assert (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert report.removed.get(RetentionKind.INBOUND_EVENTS, 0) < 9  # the last run's share
