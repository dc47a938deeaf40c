"""What an erasure test needs: a learner with a bit of everything (an open request, a
scheduled session, a completed one, a cancelled request, details text, an export, a
calendar feed, webhook deliveries), and the checks that nothing of theirs is left: every text, uuid,
jsonb and array column of every table scanned for their id and their free text, and
Temporal asked for their workflows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db.models import ScheduledSession
from integrations.webhooks.fanout import fan_out
from tests.e2e.support import Actor, Service, days_ahead, wait_until
from tests.events.harness import meeting_event, post_meeting_event
from workflows.contracts.export import export_workflow_id
from workflows.contracts.names import workflow_id_for

SessionFactory = async_sessionmaker[AsyncSession]

DELETION_WAIT = 90.0
_SCANNED_TYPES = ("text", "character varying", "uuid", "jsonb", "json", "ARRAY")


@dataclass
class Footprint:
    learner: Actor
    consultant: Actor
    free_texts: list[str]
    open_request: str
    scheduled_request: str
    completed_request: str
    cancelled_request: str
    export_id: str
    deliveries: int
    feed_path: str  # the learner's calendar feed, token in the query
    request_ids: list[str] = field(default_factory=list)


def _details() -> str:
    return f"Private notes {uuid.uuid4().hex}"


async def learner_footprint(
    service: Service, sessions: SessionFactory, *, with_deliveries: bool = True
) -> Footprint:
    """``with_deliveries``: a subscription with deliveries waiting for it (only where no
    dispatcher runs: its endpoint is not on loopback)."""
    service_type = await service.service_type(minutes=60)
    consultant = await service.consultant()
    learner = service.learner()
    texts = [_details() for _ in range(4)]

    async def slot(day: float) -> uuid.UUID:
        start = days_ahead(day)
        return await service.slot(consultant, start, start + timedelta(hours=1))

    scheduled = await service.book(
        learner,
        consultant,
        {"service_type_id": service_type, "slot_id": await slot(3), "details": texts[0]},
    )
    completed = await service.book(
        learner,
        consultant,
        {"service_type_id": service_type, "slot_id": await slot(4), "details": texts[1]},
    )
    await _complete_through_the_meeting_platform(service, sessions, completed["id"])

    cancelled = await service.submitted(
        learner, {"service_type_id": service_type, "slot_id": await slot(5), "details": texts[2]}
    )
    await service.wait_offered(cancelled["id"], consultant)
    response = await service.act(learner, cancelled["id"], "cancel", {"reason": "illness"})
    assert response.status_code == 200, response.text

    waiting = await service.submitted(
        learner, {"service_type_id": service_type, "slot_id": await slot(6), "details": texts[3]}
    )
    await service.wait_offered(waiting["id"], consultant)

    export = await _exported(service, learner)
    feed = await service.http.post(
        f"/v1/learners/{learner.user_id}/calendar-feeds", headers=learner.headers
    )
    assert feed.status_code == 201, feed.text
    address = urlsplit(feed.json()["url"])
    deliveries = 0
    if with_deliveries:
        subscribed = await service.http.post(
            "/v1/webhook-subscriptions",
            json={"url": "https://billing.example.test/hooks"},
            headers=service.operator.headers,
        )
        assert subscribed.status_code == 201, subscribed.text
        while fanned := await fan_out(sessions):
            deliveries += fanned
    return Footprint(
        learner=learner,
        consultant=consultant,
        free_texts=texts,
        open_request=waiting["id"],
        scheduled_request=scheduled["request_id"],
        completed_request=completed["request_id"],
        cancelled_request=cancelled["id"],
        export_id=export,
        deliveries=deliveries,
        feed_path=f"{address.path}?{address.query}",
        request_ids=[
            waiting["id"],
            scheduled["request_id"],
            completed["request_id"],
            cancelled["id"],
        ],
    )


async def _complete_through_the_meeting_platform(
    service: Service, sessions: SessionFactory, session_id: str
) -> None:
    """The platform reports the meeting started and ended: the session is completed
    (its workflow then waits out the no-show report window, still running)."""
    async with sessions() as session:
        meeting_id = await session.scalar(
            select(ScheduledSession.meeting_platform_session_id).where(
                ScheduledSession.id == uuid.UUID(session_id)
            )
        )
    assert meeting_id
    for kind in ("meeting.started", "meeting.ended"):
        answer = await post_meeting_event(service.http, meeting_event(kind, meeting_id))
        assert answer.status_code == 202, answer.text
    await service.wait_session(session_id, lambda s: s["status"] == "completed", "completed")


async def _exported(service: Service, learner: Actor) -> str:
    started = await service.http.post(
        f"/v1/people/{learner.user_id}/data-exports", headers=learner.headers
    )
    assert started.status_code == 202, started.text
    location = started.headers["Location"]

    async def read() -> dict[str, Any]:
        body: dict[str, Any] = (await service.http.get(location, headers=learner.headers)).json()
        return body

    await wait_until(read, lambda e: e["status"] == "ready", what="the export ready")
    return str(started.json()["id"])


async def leftovers(sessions: SessionFactory, needles: list[str]) -> dict[str, int]:
    """``table.column: needle -> rows`` for every text-like column holding a needle."""
    found: dict[str, int] = {}
    async with sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
                    "AND data_type = ANY(:types) ORDER BY table_name, column_name"
                ),
                {"types": list(_SCANNED_TYPES)},
            )
        ).all()
        assert len(columns) > 40  # every table's, not a few
        for table, column in columns:
            for needle in needles:
                count = await session.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :pattern'),  # noqa: S608
                    {"pattern": f"%{needle}%"},
                )
                if count:
                    found[f"{table}.{column}: {needle}"] = int(count)
    return found


async def wait_erased(service: Service, person: uuid.UUID, within: float = 90.0) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        response = await service.http.get(
            f"/v1/people/{person}/erasure", headers=service.operator.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return await wait_until(
        read, lambda e: e["status"] == "completed", within=within, what="the erasure done"
    )


async def _gone(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return True
        raise
    return False


async def assert_temporal_holds_none_of(
    client: Client, person: uuid.UUID, request_ids: list[str], export_ids: list[str]
) -> None:
    """Their workflows are deleted (Temporal deletes asynchronously, the dev server
    some 30 s after it was asked: wait for it), and a visibility query for their id
    finds nothing."""
    workflow_ids = [workflow_id_for(uuid.UUID(r)) for r in request_ids] + [
        export_workflow_id(uuid.UUID(e)) for e in export_ids
    ]

    async def still_there() -> list[str]:
        return [w for w in workflow_ids if not await _gone(client, w)]

    await wait_until(
        still_there, lambda left: left == [], within=DELETION_WAIT, what="their workflows deleted"
    )

    async def listed() -> list[str]:
        query = f"RequesterId = '{person}' OR ConsultantId = '{person}'"
        return [execution.id async for execution in client.list_workflows(query)]

    await wait_until(
        listed, lambda found: found == [], within=DELETION_WAIT, what="none listed for them"
    )
