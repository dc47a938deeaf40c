"""Erasing a person end to end: an operator's call for a learner, the IAM's event for a
consultant. Afterwards no table holds their id or their free text (every text, uuid,
jsonb and array column scanned), what was open is cancelled (or declined) through the
requests' own workflows with the usual events, Temporal holds none of their
workflows, their token answers 410, and the counts still add up under the pseudonym."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.pseudonyms import pseudonym_for
from core.settings import Settings
from db.models import (
    ConsultantProfile,
    ConsultationRequest,
    DomainEvent,
    PersonErasure,
    WebhookDelivery,
)
from integrations import iam_webhooks
from tests.e2e.erasure_support import (
    assert_temporal_holds_none_of,
    learner_footprint,
    leftovers,
    wait_erased,
)
from tests.e2e.support import Service, days_ahead
from tests.events.conftest import MEETING_SECRET
from tests.support.problems import assert_problem
from workflows.contracts.erasure import erasure_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

SessionFactory = async_sessionmaker[AsyncSession]
IAM_SECRET = "iam-shared-secret-for-the-erasure-tests"


@pytest.fixture
def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(
        update={
            "meeting_webhook_secret": SecretStr(MEETING_SECRET),
            "iam_webhook_secret": SecretStr(IAM_SECRET),
        }
    )


def _pseudonym(settings: Settings, person: uuid.UUID) -> uuid.UUID:
    return pseudonym_for(person, settings.pseudonym_secret.get_secret_value())


async def _events(sessions: SessionFactory, request_id: str) -> list[DomainEvent]:
    async with sessions() as session:
        query = (
            select(DomainEvent)
            .where(DomainEvent.consultation_request_id == uuid.UUID(request_id))
            .order_by(DomainEvent.sequence)
        )
        return list((await session.scalars(query)).all())


async def test_erasing_a_learner_leaves_nothing_of_theirs(
    service: Service,
    session_factory: SessionFactory,
    dev_env: WorkflowEnvironment,
    e2e_settings: Settings,
) -> None:
    footprint = await learner_footprint(service, session_factory)
    person = footprint.learner.user_id
    pseudonym = _pseudonym(e2e_settings, person)
    assert footprint.deliveries > 0
    needles = [str(person), *footprint.free_texts]
    # The scan sees what is there: before, every needle is found somewhere.
    before = await leftovers(session_factory, needles)
    assert {key.split(": ", 1)[1] for key in before} == set(needles)

    asked = await service.http.post(
        f"/v1/people/{person}/erasure", headers=service.operator.headers
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["person_pseudonym"] == str(pseudonym)
    # From now on their token is refused, while the erasure runs and after, and their
    # calendar feed serves nothing.
    assert_problem(
        await service.http.get("/v1/consultation-requests", headers=footprint.learner.headers),
        410,
    )
    assert_problem(await service.http.get(footprint.feed_path), 404)
    again = await service.http.post(
        f"/v1/people/{person}/erasure", headers=service.operator.headers
    )
    assert again.status_code == 200, again.text

    done = await wait_erased(service, person)
    assert done["requested_by"] == str(service.operator.user_id)
    assert done["requested_via"] == "operator"
    assert done["step"] == "completed"

    # Nothing of theirs in any column of any table (their calendar feed is gone).
    assert await leftovers(session_factory, needles) == {}
    assert_problem(await service.http.get(footprint.feed_path), 404)

    # What was open was cancelled through its workflow, with the usual events.
    async with session_factory() as session:
        rows = {
            str(row.id): row
            for row in (
                await session.scalars(
                    select(ConsultationRequest).where(
                        ConsultationRequest.requester_user_id == pseudonym
                    )
                )
            ).all()
        }
    assert set(rows) == set(footprint.request_ids)  # all four, under the pseudonym
    for erased in (footprint.open_request, footprint.scheduled_request):
        assert (rows[erased].status, rows[erased].status_reason) == ("cancelled", "account_erased")
    assert rows[footprint.completed_request].status == "completed"
    assert rows[footprint.cancelled_request].status_reason == "cancelled_by_requester"
    assert all(row.request_details is None for row in rows.values())

    open_events = await _events(session_factory, footprint.open_request)
    assert open_events[-1].event_type == "consultation.cancelled"
    assert open_events[-1].payload["reason"] == "account_erased"
    assert open_events[-1].payload["cancelled_by"] == "system"
    scheduled_events = [
        e.event_type for e in await _events(session_factory, footprint.scheduled_request)
    ]
    assert scheduled_events[-2:] == ["session.cancelled", "consultation.cancelled"]
    requested = (await _events(session_factory, footprint.scheduled_request))[0]
    assert requested.payload["requester_id"] == str(pseudonym)  # kept, pseudonymised
    async with session_factory() as session:
        kept_deliveries = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert kept_deliveries is not None
    assert kept_deliveries >= footprint.deliveries

    # Temporal holds none of their workflows; the erasure's own names only the pseudonym.
    client = dev_env.client
    await assert_temporal_holds_none_of(
        client, person, footprint.request_ids, [footprint.export_id]
    )
    history = await client.get_workflow_handle(erasure_workflow_id(pseudonym)).fetch_history()
    assert str(person) not in history.to_json()

    # The erasure itself is on record: when and by whom, under the pseudonym.
    async with session_factory() as session:
        record = await session.get(PersonErasure, pseudonym)
    assert record is not None
    assert record.subject_id is None
    assert record.completed_at is not None


def _signed(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    return body, {
        iam_webhooks.TIMESTAMP_HEADER: timestamp,
        iam_webhooks.SIGNATURE_HEADER: iam_webhooks.sign(body, timestamp, IAM_SECRET),
        "Content-Type": "application/json",
    }


async def _iam(http: httpx.AsyncClient, event: dict[str, Any]) -> httpx.Response:
    body, headers = _signed(event)
    return await http.post("/v1/webhooks/iam", content=body, headers=headers)


async def test_the_iam_erases_a_consultant(
    service: Service,
    session_factory: SessionFactory,
    dev_env: WorkflowEnvironment,
    e2e_settings: Settings,
) -> None:
    service_type = await service.service_type(minutes=60)
    consultant = await service.consultant()
    colleague = await service.consultant()
    bio = f"Twenty years of teaching {uuid.uuid4().hex}"
    named = await service.http.patch(
        f"/v1/consultants/{consultant.user_id}", json={"bio": bio}, headers=consultant.headers
    )
    assert named.status_code == 200, named.text
    start = days_ahead(3)
    booked_slot = await service.slot(consultant, start, start + timedelta(hours=1))
    session = await service.book(
        service.learner(), consultant, {"service_type_id": service_type, "slot_id": booked_slot}
    )
    offered_start = days_ahead(4)
    await service.slot(consultant, offered_start, days_ahead(4, 11))
    await service.slot(colleague, offered_start, days_ahead(4, 11))
    waiting = await service.submitted(
        service.learner(),
        {
            "service_type_id": service_type,
            "preferred_consultant_id": consultant.user_id,
            "preferred_start": offered_start,
            "preferred_end": days_ahead(4, 11),
        },
    )
    await service.wait_offered(waiting["id"], consultant)
    display_name = f"Consultant {consultant.user_id}"  # what Service.consultant() set

    ignored = await _iam(
        service.http,
        {
            "id": "evt-1",
            "type": "user.updated",
            "user_id": str(consultant.user_id),
            "occurred_at": "2026-12-02T10:00:00Z",
        },
    )
    assert (ignored.status_code, ignored.json()["status"]) == (202, "ignored")
    event = {
        "id": "evt-2",
        "type": "user.deleted",
        "user_id": str(consultant.user_id),
        "occurred_at": "2026-12-02T10:00:00Z",
    }
    accepted = await _iam(service.http, event)
    assert (accepted.status_code, accepted.json()["status"]) == (202, "accepted")
    assert (await _iam(service.http, event)).status_code == 202  # a repeat is harmless
    forged = await service.http.post(
        "/v1/webhooks/iam",
        content=json.dumps(event).encode(),
        headers={
            iam_webhooks.TIMESTAMP_HEADER: str(int(time.time())),
            iam_webhooks.SIGNATURE_HEADER: "v1=00",
        },
    )
    assert_problem(forged, 401)

    done = await wait_erased(service, consultant.user_id)
    assert (done["requested_via"], done["requested_by"]) == ("iam", None)
    pseudonym = _pseudonym(e2e_settings, consultant.user_id)

    assert await leftovers(session_factory, [str(consultant.user_id), bio, display_name]) == {}
    cancelled = await service.session(session["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["consultant_id"] == str(pseudonym)
    # The request offered to them was declined, so their colleague is asked instead.
    reoffered = await service.wait_offered(waiting["id"], colleague)
    assert reoffered["status"] == "pending_confirmation"
    async with session_factory() as db:
        profile = await db.get(ConsultantProfile, pseudonym)
    assert profile is not None
    assert (profile.display_name, profile.bio, profile.is_available_for_booking) == (
        None,
        None,
        False,
    )
    gone = await service.http.get(
        f"/v1/consultants/{consultant.user_id}", headers=service.operator.headers
    )
    assert_problem(gone, 404)
    await assert_temporal_holds_none_of(
        dev_env.client, consultant.user_id, [session["request_id"]], []
    )
