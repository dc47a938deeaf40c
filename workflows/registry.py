"""The workflow classes a worker registers."""

from __future__ import annotations

from workflows.calendar_sync import CalendarSyncWorkflow
from workflows.consultation import ConsultationWorkflow
from workflows.erasure import PersonErasureWorkflow
from workflows.export import PersonalDataExportWorkflow
from workflows.health import HealthCheckWorkflow
from workflows.retention import RetentionSweepWorkflow

WORKFLOWS: list[type] = [
    HealthCheckWorkflow,
    ConsultationWorkflow,
    RetentionSweepWorkflow,
    PersonalDataExportWorkflow,
    PersonErasureWorkflow,
    CalendarSyncWorkflow,
]
