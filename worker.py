"""The Temporal worker: builds the dependencies, registers workflows and activities, runs.

Run it with ``booking worker`` (or ``python -m booking.cli worker``). It stops
gracefully on SIGINT or SIGTERM: polling stops, in-flight activities get
``WORKER_SHUTDOWN_GRACE`` to finish, then the database pool is closed. Beside the
Temporal worker it runs the webhook dispatcher, the draft sweeper and, with
``BOOKING_WORKER_HEALTH_FILE``, the heartbeat that ``booking worker-health`` checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.calendars import CalendarActivities
from activities.erasure import ErasureActivities
from activities.export import ExportActivities
from activities.meetings import MeetingActivities
from activities.requests import RequestActivities
from activities.retention import RetentionActivities
from activities.sessions import SessionActivities
from core.settings import Settings
from core.worker_health import heartbeat
from db import drafts
from db.calendars import linked
from db.engine import create_engine, create_session_factory
from integrations.meetings import MeetingPlatform, build_meeting_platform
from integrations.observability.temporal_metrics import worker_runtime
from integrations.observability.tracing import WORKER_SERVICE_NAME, start_tracing
from integrations.temporal_client import wait_for_temporal
from integrations.webhooks.dispatcher import run_dispatcher
from workflows.bytecode import keep_workflow_bytecode
from workflows.calendar_sync_start import wake_calendar_sync
from workflows.contracts.names import workflow_id_for
from workflows.registry import WORKFLOWS

logger = logging.getLogger("booking.worker")

WORKER_SHUTDOWN_GRACE = timedelta(seconds=20)

DATABASE_APPLICATION_NAME = "booking-worker"
"""How the worker's connections show in ``pg_stat_activity``."""


# --- the activities this worker runs ---------------------------------------------------


def build_activities(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    meeting_platform: MeetingPlatform | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the service, as bound methods of their dependency holders.

    ``meeting_platform`` replaces the configured one (tests, demos).
    """
    stale_calendars_block = settings.calendar_stale_blocks_booking
    requests = RequestActivities(session_factory, stale_calendars_block=stale_calendars_block)
    sessions = SessionActivities(
        session_factory,
        default_learner_time_zone=settings.default_learner_time_zone,
        stale_calendars_block=stale_calendars_block,
    )
    meetings = MeetingActivities(
        session_factory, meeting_platform or build_meeting_platform(settings)
    )
    retention = RetentionActivities(session_factory)
    export = ExportActivities(session_factory)
    erasure = ErasureActivities(session_factory)
    calendars = CalendarActivities(session_factory, settings)
    return [
        requests.persist_request,
        requests.find_candidates,
        requests.hold_slot,
        requests.release_hold,
        requests.remind_confirmation,
        requests.reject_request,
        requests.cancel_request,
        sessions.reserve,
        sessions.reschedule_session,
        sessions.cancel_session,
        sessions.send_reminder,
        sessions.start_session,
        sessions.complete_session,
        sessions.mark_no_show,
        meetings.create_meeting,
        meetings.reschedule_meeting,
        meetings.cancel_meeting,
        retention.sweep_batch,
        export.collect_page,
        export.finish,
        erasure.record_step,
        erasure.close_for_booking,
        erasure.open_requests,
        erasure.settle_request,
        erasure.forget_workflows,
        erasure.delete_free_text,
        erasure.pseudonymise_events,
        erasure.pseudonymise_rows,
        erasure.finish,
        calendars.list_calendars,
        calendars.sync_calendar,
    ]


# --- housekeeping beside the workflows -------------------------------------------------

DRAFT_SWEEP_BATCH = 200
DESCRIBE_TIMEOUT = timedelta(seconds=5)

DraftStillWanted = Callable[[uuid.UUID], Awaitable[bool]]
"""Whether a stale draft's request workflow may still take it (``True`` when unsure)."""


def workflow_may_take_draft(client: Client) -> DraftStillWanted:
    """Asks Temporal: a running workflow has not stored its request yet (its worker
    may have been down for longer than the TTL), so its draft must stay."""

    async def still_wanted(request_id: uuid.UUID) -> bool:
        handle = client.get_workflow_handle(workflow_id_for(request_id))
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT.total_seconds()):
                description = await handle.describe()
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return False  # never started: nobody will take the draft
            logger.warning("could not ask about request %s: %s", request_id, error)
            return True
        except (TimeoutError, RuntimeError) as error:
            logger.warning("could not ask about request %s: %s", request_id, error)
            return True
        return description.status is WorkflowExecutionStatus.RUNNING

    return still_wanted


async def sweep_drafts_once(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    still_wanted: DraftStillWanted,
) -> int:
    """Delete the stale drafts no workflow can take any more; returns how many went.

    Reads and deletes in short transactions of their own: none is open while
    Temporal is asked."""
    older_than = datetime.now(UTC) - settings.request_draft_ttl
    swept = kept = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with session_factory() as session, session.begin():
            stale = await drafts.stale_drafts(
                session, older_than=older_than, after=after, limit=DRAFT_SWEEP_BATCH
            )
        if not stale:
            break
        after = (stale[-1].created_at, stale[-1].request_id)
        unwanted = [
            draft.request_id
            for draft in stale
            if draft.request_stored or not await still_wanted(draft.request_id)
        ]
        kept += len(stale) - len(unwanted)
        async with session_factory() as session, session.begin():
            swept += await drafts.delete_drafts(session, unwanted, older_than=older_than)
        if len(stale) < DRAFT_SWEEP_BATCH:
            break
    if swept:
        logger.info("deleted %d stale request drafts", swept)
    if kept:
        logger.warning(
            "kept %d request drafts older than %s: their workflows have not stored them "
            "yet (is a worker polling %s?)",
            kept,
            settings.request_draft_ttl,
            settings.temporal_task_queue,
        )
    return swept


async def run_draft_sweeper(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    still_wanted: DraftStillWanted,
    stop: asyncio.Event,
) -> None:
    """Sweep until ``stop`` is set. Several workers may sweep at once: a DELETE is idempotent."""
    interval = settings.request_draft_sweep_interval.total_seconds()
    while not stop.is_set():
        try:
            await sweep_drafts_once(session_factory, settings, still_wanted)
        except Exception:
            # The database may be restarting; the next round catches up.
            logger.exception("sweeping request drafts failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


KEEPER_BATCH = 100
OVERDUE_AFTER_ROUNDS = 3
KEEPER_GRACE = timedelta(minutes=1)


async def wake_overdue_calendar_syncs(
    client: Client, session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> int:
    """Start the sync of every consultant whose calendars no sync has tried for a few
    intervals, or ever: linking a calendar starts its consultant's sync, but not while
    Temporal is unreachable, and a sync workflow someone terminated is not there
    either. Returns how many were woken."""
    now = datetime.now(UTC)
    interval = settings.calendar_sync_interval
    async with session_factory() as session, session.begin():
        overdue = await linked.consultants_overdue(
            session,
            attempted_before=now - OVERDUE_AFTER_ROUNDS * interval - KEEPER_GRACE,
            linked_before=now - KEEPER_GRACE,
            limit=KEEPER_BATCH,
        )
    for consultant_id in overdue:
        await wake_calendar_sync(
            client,
            consultant_id=consultant_id,
            task_queue=settings.temporal_task_queue,
            interval=interval,
        )
    if overdue:
        logger.info("started the calendar sync of %d consultants that had none", len(overdue))
    return len(overdue)


async def run_calendar_keeper(
    client: Client,
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    stop: asyncio.Event,
) -> None:
    """Wake overdue calendar syncs every interval until ``stop`` is set. Several
    workers may do it at once: a signal-with-start of a running sync only signals it."""
    interval = max(settings.calendar_sync_interval, KEEPER_GRACE).total_seconds()
    while not stop.is_set():
        try:
            await wake_overdue_calendar_syncs(client, session_factory, settings)
        except Exception:
            # Temporal or the database may be restarting; the next round catches up.
            logger.exception("waking overdue calendar syncs failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


# --- health: a heartbeat file for the container's health check --------------------------

HEALTH_CHECK_TIMEOUT = timedelta(seconds=5)


async def beat_once(worker: Worker, client: Client, path: Path) -> bool:
    """Rewrite the heartbeat file if the worker runs and Temporal answers; whether it did.

    Temporal's answer is what makes a beat mean something: a worker that cannot reach
    the server polls nothing, however alive its process is."""
    if not worker.is_running:
        return False
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT.total_seconds()):
            await client.service_client.check_health()
    except Exception as error:  # any failure is a missed beat, never a crash
        logger.warning("health: Temporal did not answer its health check: %s", error)
        return False
    # Written aside and renamed, so a reader never sees half a file.
    written = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    written.write_text(heartbeat(datetime.now(UTC), os.getpid()))
    os.replace(written, path)
    return True


async def run_heartbeat(
    worker: Worker, client: Client, settings: Settings, stop: asyncio.Event
) -> None:
    """Beat every ``worker_health_interval`` until ``stop``; then remove the file."""
    path = settings.worker_health_file
    if path is None:
        return
    interval = settings.worker_health_interval.total_seconds()
    try:
        while not stop.is_set():
            try:
                await beat_once(worker, client, path)
            except OSError:
                logger.exception("health: could not write %s", path)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        path.unlink(missing_ok=True)


# --- the worker ---------------------------------------------------------------------


def task_slots(settings: Settings) -> dict[str, Any]:
    """The ``Worker`` options for the task slots and pollers that are set (the others
    keep the SDK's defaults)."""
    options: dict[str, Any] = {
        name: value
        for name, value in (
            ("max_concurrent_workflow_tasks", settings.worker_max_concurrent_workflow_tasks),
            ("max_concurrent_activities", settings.worker_max_concurrent_activities),
            (
                "max_concurrent_local_activities",
                settings.worker_max_concurrent_local_activities,
            ),
        )
        if value is not None
    }
    if settings.worker_workflow_task_pollers is not None:
        options["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
            settings.worker_workflow_task_pollers
        )
    if settings.worker_activity_task_pollers is not None:
        options["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
            settings.worker_activity_task_pollers
        )
    return options


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
        **task_slots(settings),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; raises if the worker fails on its own."""
    keep_workflow_bytecode()
    # Both before the client connects: the SDK runtime (its metrics endpoint) is the
    # process's one, and the tracing interceptor goes onto the client, from which the
    # worker takes it. Unset, neither exists and the worker runs as it always did.
    runtime = worker_runtime(settings)
    tracing = start_tracing(settings, service_name=WORKER_SERVICE_NAME)
    engine = create_engine(
        settings,
        application_name=DATABASE_APPLICATION_NAME,
        tracer_provider=tracing.provider if tracing else None,
    )
    try:
        client = await wait_for_temporal(
            settings,
            interceptors=[tracing.temporal_interceptor()] if tracing else [],
            runtime=runtime,
        )
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
        if settings.worker_metrics_address is not None:
            logger.info(
                "Temporal SDK metrics at http://%s/metrics", settings.worker_metrics_address
            )
        if settings.otlp_endpoint is not None:
            logger.info("sending traces to %s", settings.otlp_endpoint)
        running = asyncio.create_task(worker.run(), name="temporal-worker")
        # Webhook delivery runs beside the worker, never inside a booking's transaction;
        # any number of worker processes may run it (claims use SKIP LOCKED).
        background_stop = asyncio.Event()
        dispatching = asyncio.create_task(
            run_dispatcher(session_factory, settings, background_stop), name="webhook-dispatcher"
        )
        sweeping = asyncio.create_task(
            run_draft_sweeper(
                session_factory, settings, workflow_may_take_draft(client), background_stop
            ),
            name="draft-sweeper",
        )
        keeping = asyncio.create_task(
            run_calendar_keeper(client, session_factory, settings, background_stop),
            name="calendar-keeper",
        )
        beating = asyncio.create_task(
            run_heartbeat(worker, client, settings, background_stop), name="health-heartbeat"
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
            await keeping
            await beating
    finally:
        await engine.dispose()
        if tracing is not None:
            tracing.shutdown()
