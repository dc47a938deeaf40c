"""Tracing and the worker's SDK metrics: off by default and then nothing at all, on
when their settings are given (the connected trace of a booking is
``tests/e2e/test_one_trace.py``)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from bench.otlp_sink import OtlpSink
from booking.devstack.ports import free_port
from core.settings import Environment, Settings
from integrations.observability.tracing import API_SERVICE_NAME, traces_url
from tests.support.database import REPO_ROOT
from tests.support.tokens import TokenFactory
from tests.support.worker_process import WorkerProcess, worker_environment
from workflows.health import HealthCheckWorkflow

SECRET = "observability-tests-secret-0123456789abcdef"

TRACING_OFF_PROBE = """
import asyncio, json, sys
from pydantic import SecretStr
from api.app import create_app
from core.settings import Environment, Settings
from integrations.observability.temporal_metrics import worker_runtime
from integrations.observability.tracing import WORKER_SERVICE_NAME, start_tracing
import worker  # what `booking worker` loads

settings = Settings(
    environment=Environment.TEST,
    jwt_secret=SecretStr(sys.argv[1]),
    database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
    temporal_address="127.0.0.1:1",
)

def middleware_chain(app):
    chain, layer = [], app.build_middleware_stack()
    while layer is not None:
        chain.append(type(layer).__name__)
        layer = getattr(layer, "app", None)
    return chain

async def main():
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        statement_listeners = len(container.engine.sync_engine.dispatch.before_cursor_execute)
        facts = {
            "middleware": middleware_chain(app),
            "statement_listeners": statement_listeners,
            "api_interceptors": [
                type(i).__name__ for i in container.temporal.config()["interceptors"]
            ],
        }
    facts["worker_tracing"] = start_tracing(settings, service_name=WORKER_SERVICE_NAME) is not None
    facts["worker_runtime"] = worker_runtime(settings) is not None
    facts["loaded"] = sorted(
        name for name in sys.modules
        if name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation",
                            "opentelemetry.exporter", "temporalio.contrib.opentelemetry"))
    )
    print(json.dumps(facts))

asyncio.run(main())
"""


def _settings(**values: Any) -> Settings:
    return Settings(environment=Environment.TEST, jwt_secret=SecretStr(SECRET), **values)


def test_tracing_off_instruments_nothing_and_loads_nothing() -> None:
    """The API and the worker's pieces as production builds them with no tracing
    setting: no OpenTelemetry middleware, no SQL listener, no interceptor on the API's
    client, no tracer provider (so none on the worker's) and no metrics runtime for
    the worker; the SDK, exporter and instrumentations are not even imported. (Given
    an endpoint and an address, the same probe finds each of them.)"""
    probe = subprocess.run(
        [sys.executable, "-c", TRACING_OFF_PROBE, SECRET],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout.splitlines()[-1])
    assert not [name for name in facts["middleware"] if "OpenTelemetry" in name]
    assert facts["statement_listeners"] == 0
    assert facts["api_interceptors"] == []
    assert facts["worker_tracing"] is False
    assert facts["worker_runtime"] is False
    assert facts["loaded"] == []


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink(keep_names=True) as running:
        yield running


async def test_tracing_on_exports_the_api_spans_over_otlp_http(
    settings: Settings, clean_database: AsyncEngine, tokens: TokenFactory, sink: OtlpSink
) -> None:
    """With ``BOOKING_OTLP_ENDPOINT`` the API traces its requests and their SQL, has the
    tracing interceptor on its Temporal client, and the batch goes out over OTLP/HTTP
    (at the latest when the app stops)."""
    app = create_app(settings.model_copy(update={"otlp_endpoint": sink.endpoint}))
    async with app.router.lifespan_context(app):
        interceptors = app.state.container.temporal.config()["interceptors"]
        assert [type(i) for i in interceptors] == [TracingInterceptor]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            listed = await http.get("/v1/service-types", headers=tokens.headers("learner"))
            assert listed.status_code == 200, listed.text
            assert (await http.get("/healthz")).status_code == 200
    assert sink.requests >= 1
    names = {name for service, name in sink.names if service == API_SERVICE_NAME}
    assert "GET /v1/service-types" in names
    assert "SELECT" in names
    # Probes are not traced, and no statement starts a trace of its own.
    assert not [name for name in names if "healthz" in name]


def test_the_traces_url_of_an_endpoint() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("https://otlp.example/v1/traces") == "https://otlp.example/v1/traces"


def test_settings_refuse_what_is_no_endpoint_or_address() -> None:
    with pytest.raises(ValidationError, match="BOOKING_OTLP_ENDPOINT"):
        _settings(otlp_endpoint="collector:4318")
    with pytest.raises(ValidationError, match="BOOKING_WORKER_METRICS_ADDRESS"):
        _settings(worker_metrics_address="9464")
    assert _settings(worker_metrics_address="0.0.0.0:9464").worker_metrics_address


SDK_METRICS = (
    # Workers short of workflow-task pollers or slots: tasks wait to start.
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_sticky_cache_size",
    "temporal_num_pollers",
    "temporal_request",
    "temporal_workflow_task_execution_latency_bucket",
)


def _scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_the_worker_serves_the_sdk_metrics_for_prometheus(
    settings: Settings, dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """``booking worker`` with ``BOOKING_WORKER_METRICS_ADDRESS``: once it has run a
    workflow task, its endpoint has the SDK's task-slot, poller, sticky-cache,
    schedule-to-start and request metrics of its task queue."""
    task_queue = f"metrics-{uuid.uuid4()}"
    address = f"127.0.0.1:{free_port()}"
    worker_settings = settings.model_copy(
        update={
            "temporal_task_queue": task_queue,
            "temporal_address": dev_env.client.service_client.config.target_host,
        }
    )
    process = WorkerProcess(
        worker_environment(worker_settings, BOOKING_WORKER_METRICS_ADDRESS=address),
        tmp_path / "worker.log",
    )
    process.start()
    try:
        answer = await dev_env.client.execute_workflow(
            HealthCheckWorkflow.run,
            "metrics",
            id=f"health-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        assert answer == "ok:metrics"
        served: set[str] = set()
        async with asyncio.timeout(30):
            while not served >= set(SDK_METRICS):
                await asyncio.sleep(0.2)
                assert process.running, process.log_tail()
                body = await asyncio.to_thread(_scrape, address)
                served = set(re.findall(r"^(temporal_\w+)[{ ]", body, re.MULTILINE))
        assert re.search(
            rf'^temporal_worker_task_slots_available{{.*task_queue="{task_queue}"',
            body,
            re.MULTILINE,
        ), body
    finally:
        process.stop()
