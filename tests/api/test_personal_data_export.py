"""The export endpoints without a workflow service: what they refuse, and that a start
Temporal cannot take leaves nothing behind."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import exports
from db.models import AuditLogEntry, PersonalDataExport
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

SessionFactory = async_sessionmaker[AsyncSession]


async def test_without_temporal_nothing_is_started_or_left(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: SessionFactory
) -> None:
    person = uuid.uuid4()
    response = await client.post(
        f"/v1/people/{person}/data-exports", headers=tokens.headers("learner", sub=person)
    )
    assert_problem(response, 503)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(PersonalDataExport)) == 0
        assert await session.scalar(select(func.count()).select_from(AuditLogEntry)) == 0


async def test_a_pending_export_cannot_be_downloaded_yet(
    client: httpx.AsyncClient, tokens: TokenFactory, session_factory: SessionFactory
) -> None:
    person = uuid.uuid4()
    async with session_factory() as session, session.begin():
        export = await exports.create_export(session, subject_id=person, requested_by=person)
    headers = tokens.headers("learner", sub=person)
    url = f"/v1/people/{person}/data-exports/{export.id}"
    read = await client.get(url, headers=headers)
    assert read.status_code == 200
    assert read.json()["status"] == "pending"
    body = assert_problem(await client.get(f"{url}/document", headers=headers), 409)
    assert body["type"].endswith("/export-not-ready")


async def test_an_unknown_or_expired_export_is_404(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    person = uuid.uuid4()
    url = f"/v1/people/{person}/data-exports/{uuid.uuid4()}"
    assert_problem(await client.get(url, headers=tokens.headers("operator")), 404)
