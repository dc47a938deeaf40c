"""What crosses the boundary of a personal data export: its names, its input, its
activities' input and output. Ids and cursors only: the data itself goes from the
database into the export's parts without passing through the workflow's history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.vocabulary import PersonalDataSection

WORKFLOW_NAME = "PersonalDataExportWorkflow"
WORKFLOW_ID_PREFIX = "personal-data-export-"


def export_workflow_id(export_id: uuid.UUID) -> str:
    return f"{WORKFLOW_ID_PREFIX}{export_id}"


class ExportActivity(StrEnum):
    COLLECT_PAGE = "export.collect_page"
    FINISH = "export.finish"


@dataclass(frozen=True, kw_only=True)
class ExportInput:
    export_id: uuid.UUID
    subject_id: uuid.UUID
    page_size: int


@dataclass(frozen=True, kw_only=True)
class CollectPageInput:
    """Store the section's page after ``after`` as part ``position`` of the export."""

    export_id: uuid.UUID
    subject_id: uuid.UUID
    section: PersonalDataSection
    position: int
    after: list[Any] | None
    page_size: int


@dataclass(frozen=True, kw_only=True)
class CollectedPage:
    items: int
    next_cursor: list[Any] | None


@dataclass(frozen=True, kw_only=True)
class FinishExportInput:
    export_id: uuid.UUID


@dataclass(kw_only=True)
class ExportSummary:
    """Items per section."""

    items: dict[PersonalDataSection, int]
