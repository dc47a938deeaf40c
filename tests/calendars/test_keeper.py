"""The worker's calendar keeper: a calendar linked while Temporal was unreachable (so
its consultant's sync never started), or one no sync has tried for a few intervals,
gets its consultant's sync started; a calendar linked a moment ago, or tried lately,
is left alone; a round that fails is logged and the keeper goes on until stopped."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from db.models import ConsultantCalendar
from tests.calendars.support import (
    IcsServer,
    Served,
    SessionFactory,
    berlin_consultant,
    feed,
    link,
    read,
)
from tests.support.tokens import TokenFactory
from worker import OVERDUE_AFTER_ROUNDS, run_calendar_keeper, wake_overdue_calendar_syncs
from workflows.contracts.calendar_sync import calendar_sync_workflow_id

pytestmark = pytest.mark.usefixtures("clean_database")

WAIT_LIMIT = 20.0


async def _linked_while_temporal_is_down(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    sessions: SessionFactory,
    url: str,
    *,
    linked_ago: timedelta,
    tried_ago: timedelta | None = None,
) -> tuple[uuid.UUID, str]:
    """A consultant with a calendar linked through an API whose Temporal is unreachable
    (``client``), dated back as if linked ``linked_ago`` and last tried ``tried_ago``."""
    consultant = await berlin_consultant(sessions)
    calendar = await link(client, tokens, consultant, url)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            update(ConsultantCalendar)
            .where(ConsultantCalendar.id == uuid.UUID(calendar["id"]))
            .values(
                created_at=now - linked_ago,
                last_attempt_at=None if tried_ago is None else now - tried_ago,
            )
        )
    return consultant, calendar["id"]


async def _has_sync(client: Client, consultant: uuid.UUID) -> bool:
    try:
        await client.get_workflow_handle(calendar_sync_workflow_id(consultant)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _synced_after(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    consultant: uuid.UUID,
    calendar_id: str,
    moment: datetime,
) -> None:
    async with asyncio.timeout(WAIT_LIMIT):
        while True:
            seen = await read(client, tokens, consultant, calendar_id)
            success = seen["last_success_at"]
            if success is not None and datetime.fromisoformat(success) > moment:
                return
            await asyncio.sleep(0.1)


@pytest.mark.usefixtures("sync_worker")
async def test_overdue_calendars_get_their_sync_started_and_fresh_ones_are_left_alone(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    dev_env: WorkflowEnvironment,
    ics_server: IcsServer,
    session_factory: SessionFactory,
    sync_settings: Settings,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("google_export.ics"))
    url = ics_server.url("/cal.ics")
    interval = sync_settings.calendar_sync_interval
    begun = datetime.now(UTC)

    never_tried = await _linked_while_temporal_is_down(
        client, tokens, session_factory, url, linked_ago=timedelta(minutes=10)
    )
    stopped_trying = await _linked_while_temporal_is_down(
        client,
        tokens,
        session_factory,
        url,
        linked_ago=timedelta(days=2),
        tried_ago=(OVERDUE_AFTER_ROUNDS + 1) * interval,
    )
    just_linked = await _linked_while_temporal_is_down(
        client, tokens, session_factory, url, linked_ago=timedelta(seconds=5)
    )
    tried_lately = await _linked_while_temporal_is_down(
        client, tokens, session_factory, url, linked_ago=timedelta(days=2), tried_ago=interval
    )
    for consultant, _ in (never_tried, stopped_trying, just_linked, tried_lately):
        assert not await _has_sync(dev_env.client, consultant)

    woken = await wake_overdue_calendar_syncs(dev_env.client, session_factory, sync_settings)

    assert woken == 2
    for consultant, calendar_id in (never_tried, stopped_trying):
        await _synced_after(client, tokens, consultant, calendar_id, begun)
    for consultant, calendar_id in (just_linked, tried_lately):
        assert not await _has_sync(dev_env.client, consultant)
        assert (await read(client, tokens, consultant, calendar_id))["last_success_at"] is None


async def test_a_failing_round_is_logged_and_the_keeper_runs_on_until_stopped(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    ics_server: IcsServer,
    session_factory: SessionFactory,
    sync_settings: Settings,
    unreachable_temporal: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("google_export.ics"))
    await _linked_while_temporal_is_down(
        client, tokens, session_factory, ics_server.url("/cal.ics"), linked_ago=timedelta(hours=1)
    )
    stop = asyncio.Event()
    caplog.set_level(logging.ERROR, logger="booking.worker")
    keeper = asyncio.create_task(
        run_calendar_keeper(unreachable_temporal, session_factory, sync_settings, stop)
    )
    try:
        async with asyncio.timeout(WAIT_LIMIT):
            while "waking overdue calendar syncs failed" not in caplog.text:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert not keeper.done(), "a failed round must not end the keeper"
    finally:
        stop.set()
    async with asyncio.timeout(5):
        await keeper
