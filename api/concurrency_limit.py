"""A bound on the requests one API process serves at once (pure ASGI).

Past the bound a request is answered at once with 503 and ``Retry-After`` instead of
queueing behind the others for database connections and Temporal calls, so an
overloaded process sheds load quickly and a load balancer or client retries
elsewhere or later. Health and metrics endpoints are not counted: they must keep
answering while the process is busy.

Why not uvicorn's ``--limit-concurrency``: it counts open connections (idle
keep-alive ones included) rather than requests in progress, and answers with a
plain-text 503 without ``Retry-After``, not a problem document. This counts exactly
the requests being served and answers like every other error of the API.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import problem_response

RETRY_AFTER_SECONDS = 1
UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, *, max_in_flight: int) -> None:
        """``max_in_flight`` 0 switches the bound off."""
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.max_in_flight <= 0
            or scope.get("path") in UNCOUNTED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        # One event loop per process: the check and the increment cannot interleave.
        if self.in_flight >= self.max_in_flight:
            response = problem_response(
                503,
                "overloaded",
                "Too many requests in progress",
                f"This API process is serving {self.max_in_flight} requests already; "
                "retry shortly.",
                instance=scope.get("path"),
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
