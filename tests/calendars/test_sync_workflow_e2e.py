"""The calendar sync as it runs: linking a calendar through the API wakes the
consultant's sync workflow on the dev server (signal-with-start), whose activities
fetch the ICS server on loopback and store the busy time; ``POST …/sync`` wakes it
again; the Temporal UI shows the workflow under the consultant's id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from tests.calendars.support import IcsServer, Served, feed, link, read
from tests.support.tokens import TokenFactory
from workflows.contracts.calendar_sync import calendar_sync_workflow_id
from workflows.search_attributes import CONSULTANT_ID

pytestmark = pytest.mark.usefixtures("clean_database")

WAIT_LIMIT = 20.0


@pytest.fixture
async def api(
    sync_settings: Settings, dev_env: WorkflowEnvironment, sync_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(sync_settings, temporal=dev_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


async def _eventually(
    probe: Callable[[], Awaitable[dict[str, Any]]], condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition(value := await probe()):  # noqa: ASYNC110  (polls the API)
            await asyncio.sleep(0.1)
    return value


async def test_linking_starts_the_sync_and_sync_now_fetches_again(
    api: httpx.AsyncClient,
    tokens: TokenFactory,
    dev_env: WorkflowEnvironment,
    ics_server: IcsServer,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("google_export.ics"))
    calendar = await link(api, tokens, consultant, ics_server.url("/cal.ics"))

    def probe() -> Awaitable[dict[str, Any]]:
        return read(api, tokens, consultant, calendar["id"])

    synced = await _eventually(probe, lambda c: c["last_success_at"] is not None)
    assert synced["busy_interval_count"] == 3

    handle = dev_env.client.get_workflow_handle(calendar_sync_workflow_id(consultant))
    described = await handle.describe()
    assert described.typed_search_attributes.get(CONSULTANT_ID) == str(consultant)
    summary = await described.static_summary()
    assert summary == f"Calendar sync for consultant {str(consultant)[:8]}"

    ics_server.paths["/cal.ics"] = Served(feed("berlin_week.ics"))
    response = await api.post(
        f"/v1/consultants/{consultant}/calendars/{calendar['id']}/sync",
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"calendar_id": calendar["id"], "status": "accepted"}
    resynced = await _eventually(probe, lambda c: c["busy_interval_count"] == 7)
    assert resynced["stale"] is False
    metadata = await handle.query("__temporal_workflow_metadata")
    details = str(metadata)
    assert "Next sync" in details
    assert "1 linked calendar" in details
