"""A cap on request bodies, enforced while they arrive (pure ASGI).

FastAPI reads and parses a JSON body before any dependency runs, authentication
included, so without a cap anyone could make a process buffer and parse as much as
they can send. This middleware refuses a body over the limit with 413 as soon as it
knows: at once when ``Content-Length`` announces it (the app is not called and the
body is never read), otherwise when the bytes counted so far pass it, also for a
chunked upload that announces nothing. Only the bytes up to the limit are ever
handed to the app.

It is not ``BaseHTTPMiddleware``, which would buffer and re-wrap the stream, and not
Starlette's ``RequestBodyLimitMiddleware``, whose 413 is not a problem document.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem_response

STATUS = 413
SLUG = "payload-too-large"
TITLE = "Payload too large"


class RequestBodyTooLarge(HTTPException):
    """Raised from ``receive`` once the streamed body passes the limit.

    An ``HTTPException``, so that FastAPI's body parsing lets it through (it turns
    other errors into a 400) and the app's handler renders it as the same 413 problem.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(STATUS, _detail(max_bytes))


def _detail(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes, the most this API accepts."


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            # The server refuses a malformed one before the app sees the request.
            return int(value) if value.isdigit() else None
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except RequestBodyTooLarge:
            # Usually the app's handler has answered already; this covers code that
            # reads the body outside a route (a middleware of its own).
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            STATUS,
            SLUG,
            TITLE,
            _detail(self.max_bytes),
            instance=scope.get("path"),
            # The unread rest of the body makes the connection unusable for another request.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
