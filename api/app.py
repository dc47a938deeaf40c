"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.access_log import redact_access_log
from api.auth import TokenVerifier
from api.body_limit import BodySizeLimit
from api.concurrency_limit import ConcurrencyLimit
from api.container import AppContainer
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import HttpMetrics, HttpMetricsMiddleware
from api.openapi import install_openapi
from api.routes import (
    audit_log,
    availability,
    calendar_feeds,
    calendars,
    consultants,
    consultation_requests,
    events,
    health,
    iam_webhooks,
    meeting_platform_webhooks,
    personal_data,
    search,
    service_limits,
    service_types,
    session_calendar,
    sessions,
    webhook_deliveries,
    webhook_subscriptions,
)
from api.shared_rate_limit import run_bucket_sweeper
from core.settings import Settings, get_settings
from db.engine import create_engine, create_session_factory
from integrations.observability.tracing import API_SERVICE_NAME, Tracing, start_tracing
from integrations.temporal_client import connect_temporal

DESCRIPTION = """
Learners request consultations, consultants publish availability and confirm the
requests assigned to them, operators watch and fix things.

Every call needs a bearer JWT from the platform's IAM (`sub` = user id, a `roles`
claim with `learner`, `consultant` or `operator`). Errors are
`application/problem+json` (RFC 9457).
"""


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Build the app; the database engine and Temporal client live as long as it runs.

    Tracing is on when ``BOOKING_OTLP_ENDPOINT`` is set, or when ``tracing`` is given
    (then the caller owns it, and a given ``temporal`` client brings its own
    interceptor); off, nothing is instrumented.
    """
    settings = settings or get_settings()
    owns_tracing = tracing is None
    tracing = tracing or start_tracing(settings, service_name=API_SERVICE_NAME)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings,
            application_name="booking-api",
            tracer_provider=tracing.provider if tracing else None,
        )
        client = temporal or await connect_temporal(
            settings,
            lazy=True,
            interceptors=[tracing.temporal_interceptor()] if tracing else [],
        )
        verifier = TokenVerifier(settings)
        container = AppContainer(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            temporal=client,
            verifier=verifier,
            metrics=metrics,
            tracer_provider=tracing.provider if tracing else None,
        )
        app.state.container = container
        stop_sweeping = asyncio.Event()
        sweeping = (
            asyncio.create_task(
                run_bucket_sweeper(
                    container.session_factory, settings.rate_limit_sweep_interval, stop_sweeping
                ),
                name="rate-limit-sweeper",
            )
            if container.shares_rate_limits
            else None
        )
        # What start-up built (the app, its routes and schemas, the ORM, the drivers)
        # lives as long as the process: out of the collector's sight, a full collection
        # walks only what requests allocate, instead of pausing a request for the
        # whole heap.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop_sweeping.set()
            if sweeping is not None:
                await sweeping
            await container.rate_limits.aclose()
            await verifier.aclose()
            await engine.dispose()
            if tracing is not None and owns_tracing:
                tracing.shutdown()

    metrics = HttpMetrics()
    app = FastAPI(
        title="Booking & Consultation Service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's pages load their assets from a CDN; install_docs serves them locally.
        docs_url=None,
        redoc_url=None,
    )
    # Middleware added later runs first. The limits run inside the metrics (so their
    # 413 and 503 are counted) but outside everything else: a refused request costs no
    # body read and no work.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(ConcurrencyLimit, max_in_flight=settings.api_max_concurrent_requests)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    install_error_handlers(app)
    redact_access_log()
    app.include_router(health.router)
    # Each router carries its full "/v1/..." prefix, so route templates (metrics) are whole.
    for module in (
        service_types,
        consultants,
        service_limits,
        availability,
        calendars,
        search,
        consultation_requests,
        sessions,
        session_calendar,
        calendar_feeds,
        events,
        webhook_subscriptions,
        webhook_deliveries,
        meeting_platform_webhooks,
        audit_log,
        personal_data,
        iam_webhooks,
    ):
        app.include_router(module.router)
    install_openapi(app)
    install_docs(app)
    if tracing is not None:
        trace_requests(app, tracing)
    return app


UNTRACED_PATHS = "/healthz$,/readyz$,/metrics$"
"""Probes and scrapes: a trace every few seconds that says nothing about a booking."""


def trace_requests(app: FastAPI, tracing: Tracing) -> None:
    """A SERVER span per request, named by method and route template, that the
    Temporal calls and SQL statements made for it join. Outermost: it also sees the
    413 and 503 of the limits. Without the ASGI ``receive``/``send`` spans, two or
    more per request that only time the transport."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        excluded_urls=UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )
