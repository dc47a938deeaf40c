"""The API's starts of the personal data workflows (export, erasure)."""

from __future__ import annotations

import logging
import uuid

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import ServiceUnavailable
from workflows.contracts.erasure import ErasureInput, erasure_workflow_id
from workflows.contracts.export import ExportInput, export_workflow_id
from workflows.erasure import PersonErasureWorkflow
from workflows.export import PersonalDataExportWorkflow

logger = logging.getLogger(__name__)


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The workflow service is not reachable right now; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def start_export(
    client: Client, *, export_id: uuid.UUID, subject_id: uuid.UUID, task_queue: str, page_size: int
) -> None:
    try:
        await client.start_workflow(
            PersonalDataExportWorkflow.run,
            ExportInput(export_id=export_id, subject_id=subject_id, page_size=page_size),
            id=export_workflow_id(export_id),
            task_queue=task_queue,
            static_summary=f"Personal data export {export_id}",
        )
    except (RPCError, RuntimeError) as exc:
        logger.warning("could not start export %s: %s", export_id, exc)
        raise unavailable() from exc


async def start_erasure(client: Client, *, pseudonym: uuid.UUID, task_queue: str) -> None:
    """Start the person's erasure unless it runs (then nothing happens) or completed;
    one that failed or was terminated starts again, and resumes where it stopped."""
    try:
        await client.start_workflow(
            PersonErasureWorkflow.run,
            ErasureInput(pseudonym=pseudonym),
            id=erasure_workflow_id(pseudonym),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=f"Erasure of person {pseudonym} (pseudonym)",
        )
    except WorkflowAlreadyStartedError:
        return  # it completed before
    except (RPCError, RuntimeError) as exc:
        logger.warning("could not start erasure %s: %s", pseudonym, exc)
        raise unavailable() from exc
