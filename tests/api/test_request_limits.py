"""Bounded input: a body over the limit is a 413 problem before it is read in full (also
chunked, also before authentication), and a process past its concurrency bound answers
503 with Retry-After at once."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from api.body_limit import BodySizeLimit
from api.concurrency_limit import ConcurrencyLimit
from core.settings import Settings
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

LIMIT = 4096


@asynccontextmanager
async def limited_app(
    settings: Settings, temporal: Client, **limits: int
) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update=limits), temporal=temporal)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def _chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def _json_of_length(length: int) -> bytes:
    body = json.dumps({"name": "x", "default_duration_minutes": 30}).encode()
    return body + b" " * (length - len(body))


# --- the body limit ----------------------------------------------------------------


async def test_a_declared_length_over_the_limit_is_refused_without_calling_the_app() -> None:
    called: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])

    async with _client(BodySizeLimit(inner, max_bytes=LIMIT)) as http:
        response = await http.post("/anything", content=b"x" * (LIMIT + 1))
    body = assert_problem(response, 413)
    assert body["type"].endswith("/payload-too-large")
    assert str(LIMIT) in body["detail"]
    assert called == []


async def test_a_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    seen = 0

    async def reads_everything(scope: Any, receive: Any, send: Any) -> None:
        nonlocal seen
        while True:
            message = await receive()
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async with _client(BodySizeLimit(reads_everything, max_bytes=LIMIT)) as http:
        response = await http.post("/upload", content=_chunks(100 * LIMIT))
    assert_problem(response, 413)
    assert seen <= LIMIT


async def test_the_api_refuses_a_large_body_before_authentication(
    settings: Settings, unreachable_temporal: Client, tokens: TokenFactory
) -> None:
    async with (
        limited_app(settings, unreachable_temporal, api_max_body_bytes=LIMIT) as app,
        _client(app) as http,
    ):
        declared = await http.post(
            "/v1/service-types",
            content=_json_of_length(LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        chunked = await http.post(
            "/v1/service-types",
            content=_chunks(64 * LIMIT),
            headers={"Content-Type": "application/json", **tokens.headers("operator")},
        )
        at_the_limit = await http.post(
            "/v1/service-types",
            content=_json_of_length(LIMIT),
            headers={"Content-Type": "application/json"},
        )
    assert_problem(declared, 413)  # no token: refused before anyone asks who it is
    assert_problem(chunked, 413)
    assert_problem(at_the_limit, 401)  # read, parsed, then refused for the missing token


def test_the_default_limit_holds_the_largest_bulk_availability_post() -> None:
    defaults = Settings.model_fields
    start = datetime(2030, 1, 1, tzinfo=UTC)
    slots = [
        {
            "start_time": (start + timedelta(hours=i)).isoformat(),
            "end_time": (start + timedelta(hours=i, minutes=45)).isoformat(),
        }
        for i in range(defaults["max_slots_per_request"].default)
    ]
    body = json.dumps({"slots": slots}, indent=2).encode()
    assert len(body) * 4 < defaults["api_max_body_bytes"].default


async def test_a_chunked_upload_to_a_real_server_is_answered_before_it_ends(
    settings: Settings, unreachable_temporal: Client
) -> None:
    """Through uvicorn: the 413 arrives while the client is still sending (no final
    chunk was ever sent), so the server never waited for, nor buffered, the rest."""
    async with limited_app(settings, unreachable_temporal, api_max_body_bytes=LIMIT) as app:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /v1/service-types HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (1024, b" " * 1024)
            for _ in range(2 * LIMIT // 1024):
                writer.write(chunk)
            await writer.drain()
            async with asyncio.timeout(10):
                status_line = await reader.readline()
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
        finally:
            writer.close()
            server.should_exit = True
            await serving
            listener.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert b"content-type: application/problem+json" in head


# --- the concurrency bound ---------------------------------------------------------


async def test_past_the_bound_requests_are_503_with_retry_after_at_once() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit = ConcurrencyLimit(slow, max_in_flight=1)
    async with _client(limit) as http:
        holding = asyncio.create_task(http.get("/slow"))
        await entered.wait()
        refused = await http.get("/other")
        health = await http.get("/healthz")
        release.set()
        assert (await holding).status_code == 200
        after = await http.get("/other")
    body = assert_problem(refused, 503)
    assert body["type"].endswith("/overloaded")
    assert refused.headers["retry-after"] == "1"
    assert health.status_code == 200  # probes are never counted
    assert after.status_code == 200
    assert limit.in_flight == 0


async def test_the_api_sheds_requests_past_its_bound(
    settings: Settings, unreachable_temporal: Client, tokens: TokenFactory
) -> None:
    """A request still uploading its body holds its place; the next one is shed."""
    uploading, finish = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"name": "slow",'
        uploading.set()
        await finish.wait()
        yield b' "default_duration_minutes": 30}'

    async with (
        limited_app(settings, unreachable_temporal, api_max_concurrent_requests=1) as app,
        _client(app) as http,
    ):
        operator = tokens.headers("operator")
        holding = asyncio.create_task(
            http.post(
                "/v1/service-types",
                content=slow_body(),
                headers={**operator, "Content-Type": "application/json"},
            )
        )
        await uploading.wait()
        shed = await http.get("/v1/service-types", headers=operator)
        finish.set()
        created = await holding
    assert_problem(shed, 503)
    assert shed.headers["retry-after"] == "1"
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("operation", [("post", "/v1/service-types")])
def test_the_limits_are_documented(app: FastAPI, operation: tuple[str, str]) -> None:
    method, path = operation
    responses = app.openapi()["paths"][path][method]["responses"]
    assert {"413", "503"} <= responses.keys()
    assert "Retry-After" in responses["503"]["headers"]
