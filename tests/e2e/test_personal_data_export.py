"""Exporting a person's data end to end: the API starts the export's workflow on a real
worker, which gathers a learner with 1,000 requests page by page; the learner and an
operator download the same single JSON document, which holds all of it and nothing
of anyone else's."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.vocabulary import ParticipantRole, RequestStatus, SessionStatus
from db import calendar_feeds
from tests.e2e.support import wait_until
from tests.support.aged_rows import AgedRows, ago
from tests.support.tokens import TokenFactory
from workflows.contracts.export import export_workflow_id

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

SessionFactory = async_sessionmaker[AsyncSession]
REQUESTS = 1000
DETAILS = "Moving from support into engineering, export-marker"


async def _seed(session_factory: SessionFactory, person: uuid.UUID) -> dict[str, Any]:
    aged = AgedRows(session_factory)
    completed = await aged.requests(
        REQUESTS - 10, status=RequestStatus.COMPLETED, updated=ago(days=3), requester_id=person
    )
    open_ones = await aged.requests(
        10,
        status=RequestStatus.PENDING_ASSIGNMENT,
        updated=ago(hours=1),
        requester_id=person,
        details=DETAILS,
    )
    sessions = [
        await aged.session_for(request, status=SessionStatus.COMPLETED, updated=ago(days=3))
        for request in completed[:20]
    ]
    events = await aged.events_of(completed + open_ones, occurred=ago(days=3))
    someone_else = await aged.requests(5, status=RequestStatus.COMPLETED, updated=ago(days=3))
    await aged.events_of(someone_else, occurred=ago(days=3))
    async with session_factory() as session, session.begin():
        feed = await calendar_feeds.create_feed(
            session, ParticipantRole.LEARNER, person, calendar_feeds.new_token()
        )
        await calendar_feeds.create_feed(
            session, ParticipantRole.LEARNER, uuid.uuid4(), calendar_feeds.new_token()
        )
    return {
        "feeds": {feed.id},
        "requests": set(completed + open_ones),
        "sessions": set(sessions),
        "events": set(events),
        "someone_else": set(someone_else),
    }


async def _download(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    document: dict[str, Any] = json.loads(response.content)
    return document


async def test_a_person_with_a_thousand_requests_downloads_all_of_it(
    http: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    dev_env: WorkflowEnvironment,
) -> None:
    person = uuid.uuid4()
    seeded = await _seed(session_factory, person)
    learner = tokens.headers("learner", sub=person)
    operator = tokens.headers("operator")

    started = await http.post(f"/v1/people/{person}/data-exports", headers=learner)
    assert started.status_code == 202, started.text
    export = started.json()
    assert export["status"] == "pending"
    location = started.headers["Location"]

    async def read() -> dict[str, Any]:
        response = await http.get(location, headers=learner)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    ready = await wait_until(read, lambda e: e["status"] == "ready", what="the export ready")
    assert ready["completed_at"] is not None

    document = await _download(http, ready["document_url"], learner)
    assert document == await _download(http, ready["document_url"], operator)

    assert document["person_id"] == str(person)
    sections = document["sections"]
    assert list(sections) == [
        "profile",
        "consultation_requests",
        "request_drafts",
        "sessions",
        "availability",
        "calendars",
        "events",
        "audit_log",
        "calendar_feeds",
    ]
    requests = sections["consultation_requests"]
    assert len(requests) == REQUESTS
    assert {uuid.UUID(r["id"]) for r in requests} == seeded["requests"]
    assert {r["requester_user_id"] for r in requests} == {str(person)}
    assert sum(r["request_details"] == DETAILS for r in requests) == 10
    assert {uuid.UUID(s["id"]) for s in sections["sessions"]} == seeded["sessions"]
    assert {uuid.UUID(e["id"]) for e in sections["events"]} == seeded["events"]
    assert all("dedupe_key" not in e for e in sections["events"])
    (audited,) = sections["audit_log"]
    assert audited["action"] == "personal_data.export_requested"
    assert sections["profile"] == sections["availability"] == []
    (feed,) = sections["calendar_feeds"]  # without its token's hash
    assert (uuid.UUID(feed["id"]), feed["owner_role"]) == (*seeded["feeds"], "learner")
    assert set(feed) == {"id", "owner_role", "owner_user_id", "created_at", "revoked_at"}
    text = json.dumps(document)
    assert not any(str(other) in text for other in seeded["someone_else"])

    # The workflow carried ids and counts only: no free text entered its history.
    handle = dev_env.client.get_workflow_handle(export_workflow_id(uuid.UUID(export["id"])))
    history = await handle.fetch_history()
    assert DETAILS.encode() not in history.to_json().encode()
    assert "Moving from support" not in history.to_json()


async def test_nobody_else_exports_or_reads_a_persons_data(
    http: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    person = uuid.uuid4()
    started = await http.post(
        f"/v1/people/{person}/data-exports", headers=tokens.headers("operator")
    )
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    stranger = tokens.headers("learner", "consultant")
    assert (
        await http.post(f"/v1/people/{person}/data-exports", headers=stranger)
    ).status_code == 403
    assert (await http.get(location, headers=stranger)).status_code == 403
    assert (await http.get(f"{location}/document", headers=stranger)).status_code == 403
    # Another person's path does not reach this export either.
    other = uuid.uuid4()
    moved = location.replace(str(person), str(other))
    assert (await http.get(moved, headers=tokens.headers("learner", sub=other))).status_code == 404
