"""The API's starts of the personal data workflows (export, erasure)."""

from __future__ import annotations

import logging
import uuid

from temporalio.client import Client
from temporalio.service import RPCError

from api.errors import ServiceUnavailable
from workflows.contracts.export import ExportInput, export_workflow_id
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
