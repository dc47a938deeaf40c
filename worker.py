"""The Temporal worker: builds the dependencies, registers workflows and activities, runs.

Run it with ``booking worker`` (or ``python -m booking.cli worker``). It stops
gracefully on SIGINT or SIGTERM: polling stops, in-flight activities get
``WORKER_SHUTDOWN_GRACE`` to finish, then the database pool is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.registry import build_activities
from core.settings import Settings
from db import drafts
from db.engine import create_engine, create_session_factory
from integrations.temporal_client import wait_for_temporal
from integrations.webhooks.dispatcher import run_dispatcher
from workflows.bytecode import keep_workflow_bytecode
from workflows.registry import WORKFLOWS

logger = logging.getLogger("booking.worker")

WORKER_SHUTDOWN_GRACE = timedelta(seconds=20)

DATABASE_APPLICATION_NAME = "booking-worker"
"""How the worker's connections show in ``pg_stat_activity``."""


# --- housekeeping beside the workflows -------------------------------------------------


async def sweep_drafts_once(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> int:
    async with session_factory() as session, session.begin():
        swept = await drafts.sweep_stale_drafts(
            session, older_than=datetime.now(UTC) - settings.request_draft_ttl
        )
    if swept:
        logger.info("deleted %d stale request drafts", swept)
    return swept


async def run_draft_sweeper(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    """Sweep until ``stop`` is set. Several workers may sweep at once: a DELETE is idempotent."""
    interval = settings.request_draft_sweep_interval.total_seconds()
    while not stop.is_set():
        try:
            await sweep_drafts_once(session_factory, settings)
        except Exception:
            # The database may be restarting; the next round catches up.
            logger.exception("sweeping request drafts failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


# --- the worker ---------------------------------------------------------------------


def build_worker(
    client: Client,
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> Worker:
    """A worker polling ``settings.temporal_task_queue`` with every workflow and activity."""
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(session_factory, settings),
        graceful_shutdown_timeout=WORKER_SHUTDOWN_GRACE,
        max_cached_workflows=settings.worker_max_cached_workflows,
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; raises if the worker fails on its own."""
    keep_workflow_bytecode()
    engine = create_engine(settings, application_name=DATABASE_APPLICATION_NAME)
    try:
        client = await wait_for_temporal(settings)
        session_factory = create_session_factory(engine)
        worker = build_worker(client, settings, session_factory)
        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)

        logger.info(
            "worker polling task queue %s in namespace %s at %s",
            settings.temporal_task_queue,
            settings.temporal_namespace,
            settings.temporal_address,
        )
        running = asyncio.create_task(worker.run(), name="temporal-worker")
        # Webhook delivery runs beside the worker, never inside a booking's transaction;
        # any number of worker processes may run it (claims use SKIP LOCKED).
        background_stop = asyncio.Event()
        dispatching = asyncio.create_task(
            run_dispatcher(session_factory, settings, background_stop), name="webhook-dispatcher"
        )
        sweeping = asyncio.create_task(
            run_draft_sweeper(session_factory, settings, background_stop), name="draft-sweeper"
        )
        stopping = asyncio.create_task(stop_requested.wait(), name="stop-signal")
        try:
            await asyncio.wait(
                {running, dispatching, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            if running.done() or dispatching.done():
                stopping.cancel()
                # A fatal worker or dispatcher error propagates; a clean end returns.
                (running if running.done() else dispatching).result()
                return
            logger.info("shutting down the worker (in-flight tasks may take a moment)")
            await worker.shutdown()
            await running
            logger.info("worker stopped")
        finally:
            background_stop.set()
            await dispatching  # in-flight deliveries finish and record their outcome
            await sweeping
    finally:
        await engine.dispose()
