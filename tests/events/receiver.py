"""A real HTTP endpoint on loopback that records what it receives and answers as told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import read_request


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
        body, headers = await read_request(scope, receive)
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
