"""One booking, one trace: from the learner's POST through the update-with-start, the
workflow's tasks and its (local) activities down to their SQL statements.

The API and the worker run in this process, each with the tracer provider the
service builds for it (its ``service.name``, its sampler), recording into memory
instead of exporting; the API builds its own Temporal client and engine from the
settings as it does in production, so the interceptor and instrumentation it gets are
the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from api.app import create_app
from core.settings import Settings
from db.engine import create_engine, create_session_factory
from integrations.observability.tracing import (
    API_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    Tracing,
    tracer_provider,
)
from integrations.temporal_client import connect_temporal
from tests.e2e.support import Service, days_ahead
from tests.support.tokens import TokenFactory
from worker import DATABASE_APPLICATION_NAME, build_worker
from workflows.contracts.names import WORKFLOW_NAME, workflow_id_for

pytestmark = pytest.mark.e2e

BOOKING_ACTIVITIES = (
    "consultation.persist_request",
    "consultation.find_candidates",
    "consultation.hold_slot",
    "session.reserve",
)


@dataclass(frozen=True)
class Traced:
    api: Tracing
    worker: Tracing
    spans: InMemorySpanExporter


def _tracing(service_name: str, spans: InMemorySpanExporter) -> Tracing:
    provider = tracer_provider(service_name)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Tracing(provider)


@pytest.fixture
def traced() -> Iterator[Traced]:
    spans = InMemorySpanExporter()
    both = Traced(_tracing(API_SERVICE_NAME, spans), _tracing(WORKER_SERVICE_NAME, spans), spans)
    yield both
    both.api.shutdown()
    both.worker.shutdown()


@pytest.fixture
async def traced_worker(
    traced: Traced, e2e_settings: Settings, clean_database: AsyncEngine
) -> AsyncIterator[Worker]:
    """What ``run_worker`` builds with tracing on: the interceptor on its client (the
    worker takes it from there) and its engine's statements traced."""
    client = await connect_temporal(
        e2e_settings, interceptors=[traced.worker.temporal_interceptor()]
    )
    engine = create_engine(
        e2e_settings,
        application_name=DATABASE_APPLICATION_NAME,
        tracer_provider=traced.worker.provider,
    )
    sessions: async_sessionmaker[AsyncSession] = create_session_factory(engine)
    try:
        async with build_worker(client, e2e_settings, sessions) as running:
            yield running
    finally:
        await engine.dispose()


@pytest.fixture
async def traced_service(
    traced: Traced, e2e_settings: Settings, tokens: TokenFactory, clean_database: AsyncEngine
) -> AsyncIterator[Service]:
    app = create_app(e2e_settings, tracing=traced.api)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Service(http, tokens)


def _service(span: ReadableSpan) -> object:
    return span.resource.attributes.get("service.name")


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = _parent_id(span)
    while parent is not None:
        names.append(by_id[parent].name)
        parent = _parent_id(by_id[parent])
    return names


@pytest.mark.usefixtures("traced_worker")
async def test_a_booking_is_one_connected_trace(traced_service: Service, traced: Traced) -> None:
    service = traced_service
    service_type = await service.service_type(minutes=30)
    consultant = await service.consultant()
    start = days_ahead(3)
    slot = await service.slot(consultant, start, start + timedelta(hours=1))
    learner = service.learner()
    traced.spans.clear()  # the catalogue set-up above is traces of its own

    submitted = await service.submitted(
        learner, {"service_type_id": service_type, "slot_id": slot, "start": start}
    )
    await service.wait_offered(submitted["id"], consultant)
    confirmed = await service.act(consultant, submitted["id"], "confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "scheduled"
    # The meeting is created by a (regular) activity right after the booking.
    await service.wait_session(
        confirmed.json()["session_id"], lambda s: s["join_url"] is not None, "meeting ready"
    )

    finished = list(traced.spans.get_finished_spans())
    submit = _one(
        [s for s in finished if s.kind is SpanKind.SERVER and _service(s) == API_SERVICE_NAME],
        "POST /v1/consultation-requests",
    )
    trace = [s for s in finished if s.context.trace_id == submit.context.trace_id]
    by_id = {s.context.span_id: s for s in trace}

    # One tree: every span's parent is in the trace, and the submit is its only root.
    assert [s.name for s in trace if s.parent is None] == [submit.name]
    assert {s.name for s in trace if _parent_id(s) not in by_id and s.parent is not None} == set()
    assert {_service(s) for s in trace} == {API_SERVICE_NAME, WORKER_SERVICE_NAME}

    client_call = _one(trace, f"StartUpdateWithStartWorkflow:{WORKFLOW_NAME}")
    assert client_call.kind is SpanKind.CLIENT
    assert _ancestors(client_call, by_id) == [submit.name]
    assert client_call.attributes is not None
    assert client_call.attributes["temporalWorkflowID"] == workflow_id_for(
        uuid.UUID(submitted["id"])
    )

    # The workflow's spans hang under the client call that started it: its first run,
    # the submit update, and the consultant's confirm (an update sent later, from a
    # request of its own, which the trace links to).
    run = _one(trace, f"RunWorkflow:{WORKFLOW_NAME}")
    submit_update = _one(trace, "HandleUpdate:submit")
    confirm_update = _one(trace, "HandleUpdate:confirm")
    for span in (run, submit_update, confirm_update):
        assert _service(span) == WORKER_SERVICE_NAME
        assert _ancestors(span, by_id) == [client_call.name, submit.name]

    # Every activity of the booking, the local ones included, each under the
    # workflow's call that scheduled it, and its SQL under it.
    for name in (*BOOKING_ACTIVITIES, "session.create_meeting"):
        activity = _one(trace, f"RunActivity:{name}")
        assert _service(activity) == WORKER_SERVICE_NAME
        assert _ancestors(activity, by_id) == [
            f"StartActivity:{name}",
            client_call.name,
            submit.name,
        ]
    statements = [
        s for s in trace if s.kind is SpanKind.CLIENT and "db.statement" in (s.attributes or {})
    ]
    activity_statements = {
        by_id[parent].name
        for s in statements
        if _service(s) == WORKER_SERVICE_NAME
        and (parent := _parent_id(s)) is not None
        and by_id[parent].name.startswith("RunActivity:")
    }
    assert {f"RunActivity:{name}" for name in BOOKING_ACTIVITIES} <= activity_statements
    # The bound values never: the statements carry placeholders only.
    reserve_sql = [
        str((s.attributes or {})["db.statement"])
        for s in statements
        if by_id[_parent_id(s) or 0].name == "RunActivity:session.reserve"
    ]
    assert any("$1" in sql for sql in reserve_sql), reserve_sql
    assert not [sql for sql in reserve_sql if str(uuid.UUID(submitted["id"])) in sql]

    # The confirm is a trace of its own (another request), linked from the update span.
    confirm_request = _one(finished, "POST /v1/consultation-requests/{request_id}/confirm")
    confirm_call = _one(
        [s for s in finished if s.context.trace_id == confirm_request.context.trace_id],
        "StartWorkflowUpdate:confirm",
    )
    assert _ancestors(confirm_call, {s.context.span_id: s for s in finished}) == [
        confirm_request.name
    ]
    assert [link.context.span_id for link in confirm_update.links] == [confirm_call.context.span_id]
