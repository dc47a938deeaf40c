"""A meeting platform reached over HTTP, speaking this JSON contract.

Every request carries ``Authorization: Bearer <BOOKING_MEETING_API_TOKEN>`` (when
set) and an ``Idempotency-Key`` derived from the session id, so a retried call
changes nothing twice::

    POST   /meetings                       Idempotency-Key: <session id>
           {"external_id": "<session id>", "starts_at": "<ISO-8601>", "ends_at": "<ISO-8601>"}
        -> 200 | 201  {"id": "<meeting id>", "join_url": "https://..."}

    PATCH  /meetings/<meeting id>          Idempotency-Key: <session id>:<starts_at>
           {"starts_at": "<ISO-8601>", "ends_at": "<ISO-8601>"}
        -> 200  {"id": "<meeting id>", "join_url": "https://..."}

    DELETE /meetings/<meeting id>          Idempotency-Key: <session id>:cancel
        -> 204 (404 also counts: the meeting is gone)

408, 425, 429, 5xx and transport failures are transient (the activity retries
with backoff); any other 4xx, or a 2xx body without ``id`` and ``join_url``, is
permanent. The platform reports attendance by signed webhook
(``integrations/meeting_webhooks.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from integrations.meetings.base import MeetingPlatformError, MeetingRoom, MeetingSpec

TRANSIENT_STATUSES = frozenset({408, 425, 429})
CONNECT_RETRIES = 2
"""Connection attempts retried inside one call; everything else is the activity's
retry policy (exponential backoff)."""


class HttpMeetingPlatform:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._transport = transport

    @property
    def reports_attendance(self) -> bool:
        return True

    async def create(self, spec: MeetingSpec) -> MeetingRoom:
        body = {
            "external_id": str(spec.session_id),
            "starts_at": spec.start.isoformat(),
            "ends_at": spec.end.isoformat(),
        }
        response = await self._send("POST", "/meetings", str(spec.session_id), body)
        return _room(response)

    async def reschedule(self, room: MeetingRoom, spec: MeetingSpec) -> MeetingRoom:
        body = {"starts_at": spec.start.isoformat(), "ends_at": spec.end.isoformat()}
        key = f"{spec.session_id}:{spec.start.isoformat()}"
        response = await self._send("PATCH", f"/meetings/{room.platform_session_id}", key, body)
        return _room(response)

    async def cancel(self, room: MeetingRoom, session_id: uuid.UUID) -> None:
        await self._send(
            "DELETE",
            f"/meetings/{room.platform_session_id}",
            f"{session_id}:cancel",
            None,
            missing_ok=True,
        )

    async def _send(
        self,
        method: str,
        path: str,
        idempotency_key: str,
        body: dict[str, Any] | None,
        *,
        missing_ok: bool = False,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        transport = self._transport or httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES)
        try:
            async with httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, transport=transport
            ) as client:
                response = await client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise MeetingPlatformError(
                f"{method} {path}: {type(error).__name__}", permanent=False
            ) from error
        if missing_ok and response.status_code == 404:
            return response
        if response.is_success:
            return response
        transient = response.status_code in TRANSIENT_STATUSES or response.status_code >= 500
        raise MeetingPlatformError(
            f"{method} {path}: HTTP {response.status_code}", permanent=not transient
        )


def _room(response: httpx.Response) -> MeetingRoom:
    try:
        data = response.json()
        meeting_id, join_url = data["id"], data["join_url"]
    except (ValueError, KeyError, TypeError) as error:
        raise MeetingPlatformError("unexpected response body", permanent=True) from error
    if not isinstance(meeting_id, str) or not isinstance(join_url, str):
        raise MeetingPlatformError("unexpected response body", permanent=True)
    return MeetingRoom(platform_session_id=meeting_id, join_url=join_url)
