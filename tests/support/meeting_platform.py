"""A meeting platform on loopback speaking the contract of ``integrations/meetings/http.py``.

It behaves as a careful real platform does: a repeated ``Idempotency-Key`` gets the
meeting the first call created. It can also misbehave on purpose, to prove the
service copes: answer 503 before doing anything, or create the meeting and then
answer 503 as if the response had been lost on the way back.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import read_request

JOIN_BASE = "https://meet.platform.test"


@dataclass
class Meeting:
    id: str
    external_id: str
    join_url: str
    starts_at: str
    ends_at: str
    deleted: bool = False


@dataclass
class FakeMeetingPlatform:
    """ASGI app; ``refuse_share`` and ``lose_share`` are the shares of create calls that
    fail before, and after, the meeting was created."""

    refuse_share: float = 0.0
    lose_share: float = 0.0
    seed: int = 0
    base_url: str = ""
    meetings: dict[str, Meeting] = field(default_factory=dict)
    create_calls: Counter[str] = field(default_factory=Counter)
    """POST /meetings per external id, answered or not."""
    _by_key: dict[str, str] = field(default_factory=dict)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def meetings_for(self, external_id: str) -> list[Meeting]:
        return [m for m in self.meetings.values() if m.external_id == external_id]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, headers = await read_request(scope, receive)
        status, answer = self._handle(scope["method"], scope["path"], headers, body)
        payload = json.dumps(answer).encode() if answer is not None else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str] | None]:
        key = headers.get("idempotency-key")
        if key is None:
            return 400, {"error": "Idempotency-Key required"}
        if method == "POST" and path == "/meetings":
            return self._create(key, json.loads(body))
        if path.startswith("/meetings/") and path.count("/") == 2:
            meeting = self.meetings.get(path.rsplit("/", 1)[1])
            if meeting is None:
                return 404, {"error": "no such meeting"}
            if method == "PATCH":
                changes = json.loads(body)
                meeting.starts_at, meeting.ends_at = changes["starts_at"], changes["ends_at"]
                return 200, _view(meeting)
            if method == "DELETE":
                meeting.deleted = True
                return 204, None
        return 405, {"error": "not supported"}

    def _create(self, key: str, spec: dict[str, str]) -> tuple[int, dict[str, str]]:
        external_id = spec["external_id"]
        self.create_calls[external_id] += 1
        draw = self._rng.random()
        if draw < self.refuse_share:
            return 503, {"error": "try again"}
        known = self._by_key.get(key)
        if known is not None:
            return 200, _view(self.meetings[known])
        meeting_id = str(uuid.uuid4())
        meeting = Meeting(
            meeting_id,
            external_id,
            f"{JOIN_BASE}/{meeting_id}",
            spec["starts_at"],
            spec["ends_at"],
        )
        self.meetings[meeting_id] = meeting
        self._by_key[key] = meeting_id
        if draw < self.refuse_share + self.lose_share:
            return 503, {"error": "created, but the answer was lost"}
        return 201, _view(meeting)


def _view(meeting: Meeting) -> dict[str, str]:
    return {"id": meeting.id, "join_url": meeting.join_url}
