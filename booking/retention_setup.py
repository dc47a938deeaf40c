"""``booking setup``'s part for retention: the sweep's Temporal Schedule and how long
the namespace keeps closed workflows.

Both are idempotent, so ``booking setup`` runs at every deployment: the schedule is
created, or updated to the current settings (interval, policy, task queue); the
namespace's retention is set to ``BOOKING_TEMPORAL_NAMESPACE_RETENTION``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.settings import Settings
from workflows.contracts.retention import SCHEDULE_ID, WORKFLOW_ID, RetentionPolicy
from workflows.retention import RetentionSweepWorkflow

logger = logging.getLogger(__name__)


def retention_schedule(settings: Settings) -> Schedule:
    """One sweep every ``retention_sweep_interval``; a start is skipped while the
    previous run is still going."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionSweepWorkflow.run,
            RetentionPolicy.from_settings(settings),
            id=WORKFLOW_ID,
            task_queue=settings.temporal_task_queue,
            static_summary="Retention sweep: removes what is kept longer than its setting",
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=settings.retention_sweep_interval)]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note="Created by `booking setup` from the BOOKING_RETENTION_* settings"
        ),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> bool:
    """Create the sweep's schedule, or bring it up to date; True if it was created."""
    schedule = retention_schedule(settings)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(replace)
        logger.info("updated schedule %s", SCHEDULE_ID)
        return False
    logger.info("created schedule %s", SCHEDULE_ID)
    return True


async def set_namespace_retention(client: Client, namespace: str, retention: timedelta) -> None:
    """Closed workflow executions (and their histories) are removed after ``retention``."""
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            config=NamespaceConfig(
                workflow_execution_retention_ttl=Duration(seconds=int(retention.total_seconds()))
            ),
        )
    )
    logger.info("namespace %s keeps closed workflows for %s", namespace, retention)


async def namespace_retention(client: Client, namespace: str) -> timedelta:
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    return described.config.workflow_execution_retention_ttl.ToTimedelta()
