"""Real HTTP endpoints on loopback for the outside parties of a test (webhook
subscribers, the meeting platform): plain ASGI apps served by uvicorn."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol

import uvicorn


async def read_request(scope: dict[str, Any], receive: Any) -> tuple[bytes, dict[str, str]]:
    """The whole body of an ASGI HTTP request and its headers, names in lower case."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    return body, headers


class LoopbackApp(Protocol):
    """An ASGI app told the address it is served at."""

    base_url: str

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None: ...


class LoopbackServer:
    """Serves a ``LoopbackApp`` with uvicorn on a port the OS picked."""

    def __init__(self, receiver: LoopbackApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        receiver.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            receiver, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Listening before uvicorn runs: early connections wait in the backlog, so
        # there is no start-up moment to wait for.
        self._socket.listen()
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()
