"""Submitting: idempotency keys, many submissions racing for one slot, and the
request's details staying out of workflow histories."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment

from api import submission_checks
from api.submissions import request_id_for
from db.models import ConsultationRequest, ConsultationRequestDraft, ScheduledSession
from tests.e2e.support import (
    Service,
    assert_no_double_booking,
    days_ahead,
    wait_until,
)
from tests.support.problems import assert_problem
from tests.workflows.support import make_input
from tests.workflows.support import start as start_workflow
from workflows.contracts.names import workflow_id_for
from workflows.presentation import minute

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

Sessions = async_sessionmaker[AsyncSession]


async def _count(sessions: Sessions, model: Any, *conditions: Any) -> int:
    async with sessions() as session:
        counted = await session.scalar(select(func.count()).select_from(model).where(*conditions))
        assert counted is not None
        return counted


async def test_the_same_key_names_the_same_request(
    service: Service, session_factory: Sessions
) -> None:
    service_type = await service.service_type()
    consultant = await service.consultant()
    await service.slot(consultant, days_ahead(3), days_ahead(3) + timedelta(hours=1))
    learner, other_learner = service.learner(), service.learner()
    body = {
        "service_type_id": service_type,
        "preferred_start": days_ahead(2),
        "preferred_end": days_ahead(6),
        "details": "Portfolio review",
    }

    first = await service.submit(learner, body, key="k-1")
    again = await service.submit(learner, body, key="k-1")
    changed = await service.submit(learner, {**body, "details": "Something else"}, key="k-1")
    someone_else = await service.submit(other_learner, body, key="k-1")

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["requested_at"] == first.json()["requested_at"]
    reused = assert_problem(changed, 409)
    assert reused["type"].endswith("/idempotency-key-reused")
    assert reused["request_id"] == first.json()["id"]
    assert someone_else.status_code == 201, someone_else.text
    assert someone_else.json()["id"] != first.json()["id"]

    # A finished request is still the answer to its key.
    cancelled = await service.act(learner, first.json()["id"], "cancel")
    assert cancelled.status_code == 200, cancelled.text
    after_the_end = await service.submit(learner, body, key="k-1")
    assert after_the_end.status_code == 200, after_the_end.text
    assert after_the_end.json()["status"] == "cancelled"
    assert await _count(session_factory, ConsultationRequest) == 2
    assert await _count(session_factory, ConsultationRequestDraft) == 0


async def test_operators_see_the_service_type_by_name_in_temporal(
    service: Service, dev_env: WorkflowEnvironment
) -> None:
    """The API carries the type's name in the workflow input for the summary and
    the current details (no consultant here: the request waits for the next search)."""
    name = f"Career coaching {uuid.uuid4().hex[:6]}"
    service_type = await service.service_type(name=name)
    learner = service.learner()
    body = {
        "service_type_id": service_type,
        "preferred_start": days_ahead(2),
        "preferred_end": days_ahead(6),
    }
    created = await service.submitted(learner, body)
    handle = dev_env.client.get_workflow_handle(workflow_id_for(created["id"]))

    async def details() -> str:
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        return str(metadata.current_details)

    waiting = await wait_until(details, lambda text: "next search" in text, what="next search")
    summary = await (await handle.describe()).static_summary()
    short_learner = str(learner.user_id)[:8]
    assert summary == (
        f"{name} (60 min) for learner {short_learner}, between "
        f"{minute(days_ahead(2), reference=days_ahead(2))} and "
        f"{minute(days_ahead(6), reference=days_ahead(2))}"
    )
    assert waiting.splitlines()[0].startswith("**Waiting for a consultant: next search ")
    assert f"- {name} (60 min)" in waiting.splitlines()


async def test_concurrent_submissions_with_one_key_make_one_request(
    service: Service, session_factory: Sessions, dev_env: WorkflowEnvironment
) -> None:
    service_type = await service.service_type()
    learner = service.learner()
    body = {"service_type_id": service_type, "details": "Same thing, sent ten times"}

    responses = await asyncio.gather(
        *(service.submit(learner, body, key="double-click") for _ in range(10))
    )

    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 201}, [r.text for r in responses]
    assert 201 in codes
    assert len({r.json()["id"] for r in responses}) == 1
    assert (
        await _count(
            session_factory,
            ConsultationRequest,
            ConsultationRequest.requester_user_id == learner.user_id,
        )
        == 1
    )
    request_id = uuid.UUID(responses[0].json()["id"])
    description = await dev_env.client.get_workflow_handle(workflow_id_for(request_id)).describe()
    assert description.run_id  # one workflow, started once (REJECT_DUPLICATE forbids more)
    assert await _count(session_factory, ConsultationRequestDraft) == 0


async def test_concurrent_retries_of_a_submission_holding_its_slot_get_that_request(
    service: Service, session_factory: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first of ten copies stores the request and holds its slot while the others
    are still checking it: a retry is never told its own slot is taken."""
    service_type = await service.service_type()
    consultant = await service.consultant()
    start = days_ahead(3)
    slot = await service.slot(consultant, start, start + timedelta(hours=1))
    learner = service.learner()
    body = {"service_type_id": service_type, "slot_id": slot, "details": "Sent ten times"}

    # The race made certain: every copy but the first has looked for the stored
    # request (not there yet) and goes on checking only once the slot is held.
    real_check = submission_checks.bookable_service_type
    first_through = asyncio.Event()

    async def slot_held() -> bool:
        return await service.slot_status(consultant, slot) == "held"

    async def check_after_the_hold(session: AsyncSession, service_type_id: uuid.UUID) -> Any:
        if first_through.is_set():
            await wait_until(slot_held, bool, what="the first copy holds the slot")
        first_through.set()
        return await real_check(session, service_type_id)

    monkeypatch.setattr(submission_checks, "bookable_service_type", check_after_the_hold)
    responses = await asyncio.gather(
        *(service.submit(learner, body, key="retried") for _ in range(10))
    )

    for response in responses:
        if response.status_code == 409:  # still being stored: come back shortly
            problem = assert_problem(response, 409)
            assert problem["type"].endswith("/submission-in-progress"), problem
            assert response.headers["retry-after"].isdigit()
        else:
            assert response.status_code in (200, 201), response.text
    answered = [r.json()["id"] for r in responses if r.status_code != 409]
    assert answered
    assert len(set(answered)) == 1
    mine = ConsultationRequest.requester_user_id == learner.user_id
    assert await _count(session_factory, ConsultationRequest, mine) == 1
    request = await service.wait_offered(answered[0], consultant)
    assert request["requested_slot_id"] == str(slot)
    assert await _count(session_factory, ConsultationRequestDraft) == 0


async def test_a_retry_refused_while_its_first_copy_is_being_stored_is_told_to_come_back(
    service: Service, dev_env: WorkflowEnvironment
) -> None:
    """The first copy's workflow runs but has not stored the request yet (no worker
    polls its queue here) and the slot has become unavailable: the retry cannot know
    yet how its request will fare, so it answers "in progress", not "slot taken"."""
    service_type = await service.service_type()
    consultant = await service.consultant()
    start = days_ahead(3)
    slot = await service.slot(consultant, start, start + timedelta(hours=1))
    learner = service.learner()
    key = "first-copy-still-starting"
    request_id = request_id_for(learner.user_id, key)
    now = await dev_env.get_current_time()
    first_copy = make_input(now, request_id=request_id, requester_id=learner.user_id)
    handle = await start_workflow(dev_env.client, first_copy, f"nobody-polls-{uuid.uuid4()}")
    closed = await service.http.patch(
        f"/v1/consultants/{consultant.user_id}/availability/{slot}",
        json={"status": "unavailable"},
        headers=service.operator.headers,
    )
    assert closed.status_code == 200, closed.text

    retry = await service.submit(
        learner, {"service_type_id": service_type, "slot_id": slot}, key=key
    )
    problem = assert_problem(retry, 409)
    assert problem["type"].endswith("/submission-in-progress")
    assert problem["request_id"] == str(request_id)
    assert retry.headers["retry-after"] == "1"
    # A new submission (another key) for that slot is refused as before.
    other = await service.submit(
        learner, {"service_type_id": service_type, "slot_id": slot}, key="another"
    )
    assert assert_problem(other, 409)["type"].endswith("/slot-unavailable")
    await handle.terminate()


async def test_thirty_requests_for_one_slot_book_it_once(
    service: Service, session_factory: Sessions
) -> None:
    """Thirty learners ask at once for the same slot. One request gets it; the others
    asked for that slot only, so they wait, holding nothing, until an operator
    reassigns them or their window closes (then they are rejected)."""
    service_type = await service.service_type()
    consultant, colleague = await service.consultant(), await service.consultant()
    start = days_ahead(3)
    slot = await service.slot(consultant, start, start + timedelta(hours=1))
    same_time = await service.slot(colleague, start, start + timedelta(hours=1))
    learners = [service.learner() for _ in range(30)]

    submitted = await asyncio.gather(
        *(
            service.submit(learner, {"service_type_id": service_type, "slot_id": slot})
            for learner in learners
        )
    )
    assert [r.status_code for r in submitted] == [201] * 30, [r.text for r in submitted]
    ids = [r.json()["id"] for r in submitted]

    async def requests() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(service.request(i) for i in ids)))

    def settled(found: list[dict[str, Any]]) -> bool:
        waiting = [r for r in found if r["status"] == "pending_assignment"]
        return len(waiting) == 29 and all(
            r["live"] and r["live"]["next_assignment_retry_at"] for r in waiting
        )

    raced = await wait_until(requests, settled, what="one winner, 29 waiting")
    (winner,) = [r for r in raced if r["status"] == "pending_confirmation"]
    losers = [r for r in raced if r["status"] == "pending_assignment"]
    assert winner["assigned_consultant_id"] == str(consultant.user_id)
    assert {(r["attempts"], r["assigned_consultant_id"]) for r in losers} == {(0, None)}
    # They give up when no session could start in their window any more.
    closes = {r["live"]["assignment_closes_at"] for r in losers}
    assert closes == {(start - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")}

    confirmed = await service.act(consultant, winner["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    moved = losers[0]["id"]
    assigned = await service.act(
        service.operator,
        moved,
        "assign",
        {"consultant_id": colleague.user_id, "slot_id": same_time},
    )
    assert assigned.status_code == 200, assigned.text
    assert (await service.act(colleague, moved, "confirm")).status_code == 200

    final = await requests()
    assert Counter(r["status"] for r in final) == {"scheduled": 2, "pending_assignment": 28}
    for booked_slot in (slot, same_time):
        on_slot = ScheduledSession.availability_slot_id == booked_slot
        assert await _count(session_factory, ScheduledSession, on_slot) == 1
    assert await _count(session_factory, ScheduledSession) == 2
    await assert_no_double_booking(session_factory)


# --- details never reach a workflow history --------------------------------------------


def _bytes_in(value: Any) -> Iterator[bytes]:
    """Every bytes value anywhere in a protobuf message (payload data is bytes)."""
    if isinstance(value, Message):
        for _, field_value in value.ListFields():
            yield from _bytes_in(field_value)
    elif isinstance(value, bytes):
        yield value
    elif isinstance(value, str | int | float | bool):
        return
    elif isinstance(value, Mapping) or hasattr(value, "values"):
        for nested in value.values():
            yield from _bytes_in(nested)
    else:  # a repeated field
        for nested in value:
            yield from _bytes_in(nested)


async def _history_contains(env: WorkflowEnvironment, request_id: str, text: str) -> bool:
    handle = env.client.get_workflow_handle(workflow_id_for(uuid.UUID(request_id)))
    history = await handle.fetch_history()
    needle = text.encode()
    as_json = history.to_json()
    return text in as_json or any(
        needle in data for event in history.events for data in _bytes_in(event)
    )


async def test_request_details_never_enter_a_workflow_history(
    service: Service, dev_env: WorkflowEnvironment
) -> None:
    service_type = await service.service_type()
    first, second = await service.consultant(), await service.consultant()
    await service.slot(first, days_ahead(3, hour=9), days_ahead(3, hour=10))
    await service.slot(second, days_ahead(3, hour=12), days_ahead(3, hour=13))
    learner = service.learner()
    secrets = [f"private-{n}-{uuid.uuid4()}" for n in range(3)]

    async def submit(secret: str) -> dict[str, Any]:
        request = await service.submitted(
            learner, {"service_type_id": service_type, "details": secret}
        )
        await service.wait_offered(request["id"], first)  # the earliest free slot
        return request

    # Through different paths: declined then booked, cancelled, left waiting.
    booked = await submit(secrets[0])
    await service.act(first, booked["id"], "decline", {"reason": "unavailable"})
    await service.wait_offered(booked["id"], second)
    assert (await service.act(second, booked["id"], "confirm")).status_code == 200
    cancelled = await submit(secrets[1])
    assert (await service.act(learner, cancelled["id"], "cancel")).status_code == 200
    waiting = await submit(secrets[2])
    requests = [booked, cancelled, waiting]

    for request in requests:
        assert (await service.request(request["id"]))["details"] in secrets
        # The search is able to find what is there: ids travel in the payloads.
        assert await _history_contains(dev_env, request["id"], str(learner.user_id))
        for secret in secrets:
            assert not await _history_contains(dev_env, request["id"], secret)
