"""Replays every committed history against the current workflow code, so a change
that would break running workflows (non-determinism) fails here first.

Regenerate the histories with ``BOOKING_RECORD_HISTORIES=1 pytest tests/workflows``
only when the change is meant to be incompatible (and then patch the workflow with
``workflow.patched`` instead, if workflows of the old shape may still be running).
Histories of an older shape that patched code still serves stay in a folder of their
own, named for what changed after them: ``claim_in_two_steps`` holds those recorded
before one activity ranked and held (``CLAIM_IN_ONE_TRANSACTION``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.support import HISTORIES
from workflows.consultation import ConsultationWorkflow

OLDER_SHAPES = ("claim_in_two_steps",)
HISTORY_FILES = sorted(HISTORIES.glob("*.json"))
OLDER_HISTORY_FILES = sorted(
    path for shape in OLDER_SHAPES for path in (HISTORIES / shape).glob("*.json")
)


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_the_tested_paths_have_committed_histories() -> None:
    assert len(HISTORY_FILES) >= 10, HISTORY_FILES
    # Every path of the older shape is recorded in the current shape too.
    assert {path.name for path in OLDER_HISTORY_FILES} <= {path.name for path in HISTORY_FILES}


@pytest.mark.parametrize(
    "path",
    HISTORY_FILES + OLDER_HISTORY_FILES,
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
async def test_history_replays_against_the_current_code(path: Path) -> None:
    replayer = Replayer(workflows=[ConsultationWorkflow])
    await replayer.replay_workflow(_load(path))
