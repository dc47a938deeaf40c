"""The worker's health signal: a heartbeat file it rewrites while its Temporal worker
runs and the server answers, and the staleness rule ``booking worker-health`` applies."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from core.worker_health import MISSED_BEATS_TOLERATED, heartbeat, heartbeat_problem
from tests.e2e.support import wait_until
from worker import beat_once, build_worker, run_heartbeat, task_slots

INTERVAL = timedelta(seconds=10)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_recent_beat_is_healthy_and_three_missed_beats_are_not() -> None:
    fresh = heartbeat(NOW - INTERVAL, 42)
    assert heartbeat_problem(fresh, now=NOW, interval=INTERVAL) is None
    stale = heartbeat(NOW - INTERVAL * MISSED_BEATS_TOLERATED - timedelta(seconds=1), 42)
    problem = heartbeat_problem(stale, now=NOW, interval=INTERVAL)
    assert problem is not None
    assert "31 s old" in problem


def test_no_file_or_a_broken_one_is_unhealthy() -> None:
    assert heartbeat_problem(None, now=NOW, interval=INTERVAL) is not None
    for text in ("", "{}", '{"at": "yesterday"}', '{"at": "2026-12-03T12:00:00"}', "[1]"):
        assert heartbeat_problem(text, now=NOW, interval=INTERVAL) is not None, text


async def test_a_running_worker_beats_and_removes_its_file_when_it_stops(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker.health"
    worker_settings = settings.model_copy(
        update={
            "temporal_task_queue": f"health-{uuid.uuid4()}",
            "worker_health_file": path,
            "worker_health_interval": timedelta(milliseconds=100),
        }
    )
    stop = asyncio.Event()
    async with build_worker(dev_env.client, worker_settings, session_factory) as worker:
        beating = asyncio.create_task(run_heartbeat(worker, dev_env.client, worker_settings, stop))

        async def beat() -> str | None:
            return path.read_text() if path.exists() else None

        text = await wait_until(beat, bool, within=10, what="a heartbeat")
        assert json.loads(text or "{}")["pid"] == os.getpid()
        assert (
            heartbeat_problem(
                text, now=datetime.now(UTC), interval=worker_settings.worker_health_interval
            )
            is None
        )
        stop.set()
        await beating
    assert not path.exists()


async def test_no_beat_while_temporal_does_not_answer_or_the_worker_is_not_running(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker.health"
    worker_settings = settings.model_copy(update={"temporal_task_queue": f"health-{uuid.uuid4()}"})
    idle = build_worker(
        dev_env.client,
        settings.model_copy(update={"temporal_task_queue": f"idle-{uuid.uuid4()}"}),
        session_factory,
    )
    assert not await beat_once(idle, dev_env.client, path)  # never started
    unreachable = await Client.connect("127.0.0.1:1", lazy=True)
    async with build_worker(dev_env.client, worker_settings, session_factory) as running:

        async def started() -> bool:
            return running.is_running

        await wait_until(started, bool, within=10, what="the worker running")
        assert not await beat_once(running, unreachable, path)
        assert not path.exists()
        assert await beat_once(running, dev_env.client, path)
    assert path.exists()


def test_task_slots_and_pollers_reach_the_worker_only_when_set(settings: Settings) -> None:
    assert task_slots(settings) == {}
    tuned = task_slots(
        settings.model_copy(
            update={
                "worker_max_concurrent_local_activities": 16,
                "worker_workflow_task_pollers": 4,
            }
        )
    )
    assert tuned["max_concurrent_local_activities"] == 16
    assert tuned["workflow_task_poller_behavior"].maximum == 4
    assert set(tuned) == {"max_concurrent_local_activities", "workflow_task_poller_behavior"}
