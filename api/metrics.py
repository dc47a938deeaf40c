"""Prometheus metrics on a registry owned by the app (not global): the HTTP layer's,
and how far the event feed trails (read from the database at each scrape)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.event_feed import FeedLag


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "booking_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "booking_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.feed = EventFeedMetrics(self.registry)
        self.rate_limits = RateLimitMetrics(self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route).observe(seconds)
        self.requests.labels(method, route, str(status)).inc()


class HttpMetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: Starlette's ``BaseHTTPMiddleware``
    runs the rest of the app in a task of its own and streams the response through a
    memory channel, which measured about a third of a trivial request's CPU)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.observe_request(
                scope["method"], _route_template(scope), status, time.perf_counter() - started
            )


class RateLimitMetrics:
    """Which bucket refused: ``process`` (this process's own, no round trip) or
    ``global`` (the one all API processes share)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "booking_rate_limit_refusals_total",
            "Requests refused with 429 by a per-user rate limit, by kind and deciding bucket.",
            ["kind", "decided_by"],
            registry=registry,
        )

    def refused(self, kind: str, decided_by: str) -> None:
        self.refusals.labels(kind, decided_by).inc()


class EventFeedMetrics:
    """Feed lag: an open transaction holds back every event committed after it began
    (see ``db.event_feed``), so a hung one freezes the feed and webhook fan-out."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "booking_event_feed_lag_seconds",
            "Age of the oldest committed event the feed cannot serve yet (0: none waits).",
            registry=registry,
        )
        self.oldest_open_transaction = Gauge(
            "booking_event_feed_oldest_open_transaction_seconds",
            "Age of the oldest open writing transaction, which holds back the feed.",
            registry=registry,
        )

    def observe(self, lag: FeedLag) -> None:
        self.lag.set(lag.unserved_event_seconds)
        self.oldest_open_transaction.set(lag.oldest_open_transaction_seconds)

    def unknown(self) -> None:
        """The database could not be asked: no stale figure is shown as current."""
        self.lag.set(float("nan"))
        self.oldest_open_transaction.set(float("nan"))


def _route_template(scope: Scope) -> str:
    """The matched path template, so that ids don't explode the label cardinality."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
