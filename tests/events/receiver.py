"""A real HTTP endpoint on loopback that records what it receives and answers as told."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


Responder = Callable[[str, dict[str, str], bytes], int]


@dataclass
class Receiver:
    """ASGI app: every request is recorded with the status ``respond`` chose for it."""

    respond: Responder = lambda path, headers, body: 200
    delay: float = 0.0
    path_delays: dict[str, float] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    base_url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        delay = self.path_delays.get(scope["path"], self.delay)
        if delay:
            await asyncio.sleep(delay)
        status = self.respond(scope["path"], headers, body)
        # Recorded before answering: the list is in the order requests were handled.
        self.requests.append(Received(scope["path"], headers, body, status, time.monotonic()))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path


class LoopbackApp(Protocol):
    """An ASGI app told the address it is served at."""

    base_url: str

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None: ...


class ReceiverServer:
    """Serves a ``Receiver`` (or any ``LoopbackApp``) with uvicorn on a port the OS picked."""

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
