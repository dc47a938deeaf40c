"""Asking for an erasure, without a workflow service: the person is gone for the API at
once (410) even when the erasure's workflow cannot start yet, asking again is safe,
and the IAM's route checks its signature. (The erasure itself: tests/e2e.)"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from core.pseudonyms import pseudonym_for
from core.settings import Settings
from db.models import AuditLogEntry, PersonErasure
from integrations import iam_webhooks
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

SessionFactory = async_sessionmaker[AsyncSession]
IAM_SECRET = "iam-secret-for-the-api-tests-0000000000"


async def test_an_erasure_asked_for_refuses_the_persons_token_at_once(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    settings: Settings,
    session_factory: SessionFactory,
) -> None:
    person = uuid.uuid4()
    theirs = tokens.headers("learner", sub=person)
    assert (await client.get("/v1/consultation-requests", headers=theirs)).status_code == 200
    operator = uuid.uuid4()
    operator_headers = tokens.headers("operator", sub=operator)

    for _ in range(2):  # recorded once; each ask tries to start the workflow again
        asked = await client.post(f"/v1/people/{person}/erasure", headers=operator_headers)
        assert_problem(asked, 503)

    body = assert_problem(await client.get("/v1/consultation-requests", headers=theirs), 410)
    assert body["type"].endswith("/person-erased")
    status = await client.get(f"/v1/people/{person}/erasure", headers=operator_headers)
    assert status.status_code == 200, status.text
    pseudonym = pseudonym_for(person, settings.pseudonym_secret.get_secret_value())
    assert status.json()["person_pseudonym"] == str(pseudonym)
    assert (status.json()["status"], status.json()["step"]) == ("in_progress", "started")

    async with session_factory() as session:
        record = await session.get(PersonErasure, pseudonym)
        entries = list((await session.scalars(select(AuditLogEntry))).all())
    assert record is not None
    assert (record.requested_by, record.requested_via) == (operator, "operator")
    assert [(e.action, e.target_id, e.actor_id) for e in entries] == [
        ("personal_data.erasure_requested", pseudonym, operator)
    ]


async def test_only_operators_erase(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    person = uuid.uuid4()
    for headers in (tokens.headers("learner", sub=person), tokens.headers("consultant")):
        assert_problem(await client.post(f"/v1/people/{person}/erasure", headers=headers), 403)
    assert_problem(
        await client.get(f"/v1/people/{person}/erasure", headers=tokens.headers("operator")), 404
    )


async def test_nobody_cancels_with_the_erasures_reason(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await client.post(
        f"/v1/consultation-requests/{uuid.uuid4()}/cancel",
        json={"reason": "account_erased"},
        headers=tokens.headers("learner"),
    )
    assert_problem(response, 422)


@pytest.fixture
async def iam_client(
    settings: Settings, unreachable_temporal: Client, session_factory: SessionFactory
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(update={"iam_webhook_secret": SecretStr(IAM_SECRET)})
    app = create_app(configured, temporal=unreachable_temporal)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _signed(body: bytes, secret: str = IAM_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        iam_webhooks.TIMESTAMP_HEADER: timestamp,
        iam_webhooks.SIGNATURE_HEADER: iam_webhooks.sign(body, timestamp, secret),
        "Content-Type": "application/json",
    }


async def test_the_iam_route_checks_what_it_is_sent(
    iam_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    event = json.dumps(
        {
            "id": "e1",
            "type": "user.deleted",
            "user_id": str(uuid.uuid4()),
            "occurred_at": "2026-12-02T10:00:00Z",
        }
    ).encode()
    url = "/v1/webhooks/iam"
    assert_problem(await client.post(url, content=event, headers=_signed(event)), 503)
    assert_problem(await iam_client.post(url, content=event), 401)
    assert_problem(
        await iam_client.post(url, content=event, headers=_signed(event, "another-secret")), 401
    )
    garbled = b'{"id": "e2", "type": "user.deleted"}'
    assert_problem(await iam_client.post(url, content=garbled, headers=_signed(garbled)), 422)
    other = json.dumps(
        {
            "id": "e3",
            "type": "user.renamed",
            "user_id": str(uuid.uuid4()),
            "occurred_at": "2026-12-02T10:00:00Z",
        }
    ).encode()
    ignored = await iam_client.post(url, content=other, headers=_signed(other))
    assert (ignored.status_code, ignored.json()) == (202, {"status": "ignored"})
    # Signed and meant: recorded, then the workflow cannot be started here.
    assert_problem(await iam_client.post(url, content=event, headers=_signed(event)), 503)
