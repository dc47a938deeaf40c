"""Replays the committed histories of the calendar sync against the current code, so
a change that would break running syncs (non-determinism) fails here first.

Regenerate them with ``BOOKING_RECORD_HISTORIES=1 pytest tests/workflows/test_calendar_sync.py``
only when the change is meant to be incompatible (and patch the workflow instead, if
syncs of the old shape may still be running: every consultant with a calendar has one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.test_calendar_sync import CALENDAR_HISTORIES
from workflows.calendar_sync import CalendarSyncWorkflow

HISTORY_FILES = sorted(CALENDAR_HISTORIES.glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda path: path.stem)
async def test_calendar_sync_history_replays_against_the_current_code(path: Path) -> None:
    replayer = Replayer(workflows=[CalendarSyncWorkflow])
    await replayer.replay_workflow(_load(path))
