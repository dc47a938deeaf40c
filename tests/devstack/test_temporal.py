"""The Temporal dev server and the worker built by worker.py."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from booking.devstack.ports import PortInUseError, free_port
from booking.devstack.temporal import TemporalDevServer, find_temporal_binary
from booking.search_attributes_setup import register_search_attributes
from core.settings import Environment, Settings
from db.engine import create_engine, create_session_factory
from integrations.temporal_client import wait_for_temporal
from worker import build_worker
from workflows.health import HealthCheckWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

REPO_ROOT = Path(__file__).resolve().parents[2]
# The health-check workflow never touches the database; the engine connects lazily.
UNUSED_DATABASE_URL = "postgresql+asyncpg://nobody@127.0.0.1:1/unused"


@pytest.fixture
async def temporal_client(temporal_dev_server: TemporalDevServer) -> Client:
    return await Client.connect(temporal_dev_server.address)


TEST_SECRET = "worker-tests-do-not-verify-tokens-000000000"


def _settings(address: str) -> Settings:
    return Settings(
        environment=Environment.TEST,
        jwt_secret=SecretStr(TEST_SECRET),
        database_url=UNUSED_DATABASE_URL,
        temporal_address=address,
        temporal_task_queue=f"health-{uuid.uuid4()}",
    )


def test_binary_comes_from_the_wheel() -> None:
    assert find_temporal_binary().name == "temporal"
    assert os.access(find_temporal_binary(), os.X_OK)


async def test_worker_from_worker_py_executes_the_health_check(
    temporal_dev_server: TemporalDevServer, temporal_client: Client
) -> None:
    settings = _settings(temporal_dev_server.address)
    engine = create_engine(settings)
    try:
        worker = build_worker(temporal_client, settings, create_session_factory(engine))
        async with worker:
            result = await temporal_client.execute_workflow(
                HealthCheckWorkflow.run,
                "probe",
                id=f"health-{uuid.uuid4()}",
                task_queue=settings.temporal_task_queue,
                execution_timeout=timedelta(seconds=30),
            )
    finally:
        await engine.dispose()
    assert result == "ok:probe"


async def test_search_attributes_exist_from_the_start(temporal_client: Client) -> None:
    listed = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert {key.name for key in ALL_SEARCH_ATTRIBUTES} <= set(listed.custom_attributes)
    assert await register_search_attributes(temporal_client, "default") == []


async def test_register_search_attributes_is_idempotent(tmp_path: Path) -> None:
    bare = TemporalDevServer(
        free_port(), ui=False, search_attributes=(), log_file=tmp_path / "temporal.log"
    )
    await asyncio.to_thread(bare.start)
    try:
        client = await Client.connect(bare.address)
        added = await register_search_attributes(client, "default")
        assert added == sorted(key.name for key in ALL_SEARCH_ATTRIBUTES)
        assert await register_search_attributes(client, "default") == []
    finally:
        await asyncio.to_thread(bare.stop)


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        server = TemporalDevServer(port, ui=False, port_env_var="BOOKING_TEMPORAL_ADDRESS")
        with pytest.raises(PortInUseError, match=r"Temporal.*BOOKING_TEMPORAL_ADDRESS"):
            server.start()
    assert not server.running


async def test_worker_command_polls_and_stops_cleanly_on_sigterm(
    temporal_dev_server: TemporalDevServer, temporal_client: Client
) -> None:
    settings = _settings(temporal_dev_server.address)
    env = {
        **os.environ,
        "BOOKING_ENVIRONMENT": "test",
        "BOOKING_JWT_SECRET": TEST_SECRET,
        "BOOKING_DATABASE_URL": UNUSED_DATABASE_URL,
        "BOOKING_TEMPORAL_ADDRESS": temporal_dev_server.address,
        "BOOKING_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "booking.cli", "worker"),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        result = await temporal_client.execute_workflow(
            HealthCheckWorkflow.run,
            "cli",
            id=f"health-{uuid.uuid4()}",
            task_queue=settings.temporal_task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        assert result == "ok:cli"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"worker stopped" in stderr


async def test_a_starting_worker_waits_for_a_temporal_that_comes_up_later(tmp_path: Path) -> None:
    server = TemporalDevServer(free_port(), ui=False, log_file=tmp_path / "temporal.log")
    settings = _settings(server.address).model_copy(
        update={"temporal_connect_timeout": timedelta(seconds=30)}
    )
    connecting = asyncio.create_task(wait_for_temporal(settings))
    await asyncio.sleep(1.5)
    assert not connecting.done()  # still retrying: nothing listens yet
    await asyncio.to_thread(server.start)
    try:
        client = await asyncio.wait_for(connecting, timeout=20)
        assert (await client.count_workflows()).count == 0
    finally:
        await asyncio.to_thread(server.stop)


async def test_waiting_for_temporal_gives_up_after_the_timeout() -> None:
    settings = _settings(f"127.0.0.1:{free_port()}").model_copy(
        update={"temporal_connect_timeout": timedelta(seconds=1)}
    )
    with pytest.raises(RuntimeError, match="connect"):
        await wait_for_temporal(settings)


async def test_booking_temporal_talks_to_the_configured_server(
    temporal_dev_server: TemporalDevServer, temporal_client: Client
) -> None:
    assert not temporal_dev_server.address.endswith(":7233"), "a moved port, not the default"
    workflow_id = f"cli-wrapper-{uuid.uuid4()}"
    handle = await temporal_client.start_workflow(
        HealthCheckWorkflow.run,
        "cli",
        id=workflow_id,
        task_queue=f"nobody-polls-{uuid.uuid4()}",
        execution_timeout=timedelta(seconds=60),
    )
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BOOKING_")},
        "BOOKING_TEMPORAL_ADDRESS": temporal_dev_server.address,
    }
    try:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "booking.cli", "temporal", "workflow", "list"),
            *("--query", f"WorkflowId='{workflow_id}'"),
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            stdout, stderr = await process.communicate()
    finally:
        await handle.terminate()
    assert process.returncode == 0, stderr.decode()
    assert workflow_id in stdout.decode()
    assert "Running" in stdout.decode()


async def test_booking_temporal_passes_the_cli_exit_code_on() -> None:
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BOOKING_")},
        "BOOKING_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "booking.cli", "temporal", "workflow", "list"),
        *("--client-connect-timeout", "2s"),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode != 0
    assert env["BOOKING_TEMPORAL_ADDRESS"] in stderr.decode(), "it tried the configured address"
