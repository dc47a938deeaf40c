"""Replays every committed history against the current workflow code, so a change
that would break running workflows (non-determinism) fails here first.

Regenerate the histories with ``BOOKING_RECORD_HISTORIES=1 pytest tests/workflows``
only when the change is meant to be incompatible (and then patch the workflow with
``workflow.patched`` instead, if workflows of the old shape may still be running).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.support import HISTORIES
from workflows.consultation import ConsultationWorkflow

HISTORY_FILES = sorted(HISTORIES.glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_the_tested_paths_have_committed_histories() -> None:
    assert len(HISTORY_FILES) >= 10, HISTORY_FILES


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda path: path.stem)
async def test_history_replays_against_the_current_code(path: Path) -> None:
    replayer = Replayer(workflows=[ConsultationWorkflow])
    await replayer.replay_workflow(_load(path))
