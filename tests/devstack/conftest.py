"""Fixtures of the devstack tests: a Temporal dev server, scratch directories."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking.devstack.ports import free_port
from booking.devstack.temporal import TemporalDevServer


@pytest.fixture(scope="session")
def temporal_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    log_file = tmp_path_factory.mktemp("temporal") / "temporal.log"
    with TemporalDevServer(free_port(), ui=False, log_file=log_file) as server:
        yield server


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """A scratch directory PostgreSQL's service account can always reach.

    As root, PostgreSQL runs as another account that must traverse every parent of
    its data directory. pytest resets ``/tmp/pytest-of-root`` to mode 0700 whenever a
    session starts, so a concurrent session would lock the server out of ``tmp_path``.
    """
    path = Path(tempfile.mkdtemp(prefix="booking-devstack-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
