"""The worker keeps bytecode for the workflow modules even when Python would not."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import workflows.consultation
from workflows.bytecode import keep_workflow_bytecode


def test_the_workflow_modules_bytecode_is_written_despite_dont_write_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache directory of its own: what this test finds there, it wrote.
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cached = Path(importlib.util.cache_from_source(workflows.consultation.__file__))
    assert not cached.exists()

    assert keep_workflow_bytecode() is True

    assert cached.is_file()
    assert cached.is_relative_to(tmp_path)
