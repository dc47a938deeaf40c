"""The learner's time zone rides in the workflow input to the row: the workflow's
commands are the same with or without it, so histories from before it replay as
they are (no patch), and their inputs decode with the field at its default."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import FakeBooking, candidate
from tests.workflows.support import HISTORIES, keep_history, make_input, running_worker, wait_for
from tests.workflows.test_messages import confirm, operator_cancel, submit
from workflows.contracts.names import ActivityName
from workflows.contracts.workflow_input import ConsultationInput

WITH_ZONE = "learner_zone_until_scheduled"
FROM_BEFORE_ZONES = "happy_path_until_scheduled"


async def test_the_learner_zone_reaches_the_stored_request(dev_env: WorkflowEnvironment) -> None:
    now = await dev_env.get_current_time()
    slot = candidate(now + timedelta(days=3))
    fake = FakeBooking(clock=dev_env.get_current_time, candidates=[slot])
    request = make_input(now, learner_time_zone="Asia/Tokyo")
    async with running_worker(dev_env.client, fake) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await confirm(handle, slot)
        await wait_for(handle, lambda d: d.meeting_ready)
        await operator_cancel(handle)
        await handle.result()

    (persist,) = fake.named(ActivityName.PERSIST_REQUEST)
    assert persist.arg.learner_time_zone == "Asia/Tokyo"
    await keep_history(handle, WITH_ZONE)


def _started_input(name: str) -> ConsultationInput:
    """The input a committed history's workflow was started with."""
    history = WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    (decoded,) = DataConverter.default.payload_converter.from_payloads(
        list(started.input.payloads), [ConsultationInput]
    )
    assert isinstance(decoded, ConsultationInput)
    return decoded


def test_an_input_from_before_zones_decodes_without_one() -> None:
    """Both histories also replay in ``test_replay`` like every committed one."""
    assert _started_input(FROM_BEFORE_ZONES).learner_time_zone is None
    assert _started_input(WITH_ZONE).learner_time_zone == "Asia/Tokyo"
