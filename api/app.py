"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.auth import TokenVerifier
from api.body_limit import BodySizeLimit
from api.concurrency_limit import ConcurrencyLimit
from api.container import AppContainer
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import HttpMetrics
from api.openapi import install_openapi
from api.routes import (
    audit_log,
    availability,
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
    sessions,
    webhook_deliveries,
    webhook_subscriptions,
)
from api.shared_rate_limit import run_bucket_sweeper
from core.settings import Settings, get_settings
from db.engine import create_engine, create_session_factory
from integrations.temporal_client import connect_temporal

DESCRIPTION = """
Learners request consultations, consultants publish availability and confirm the
requests assigned to them, operators watch and fix things.

Every call needs a bearer JWT from the platform's IAM (`sub` = user id, a `roles`
claim with `learner`, `consultant` or `operator`). Errors are
`application/problem+json` (RFC 9457).
"""


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """Build the app; the database engine and Temporal client live as long as it runs."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, application_name="booking-api")
        client = temporal or await connect_temporal(settings, lazy=True)
        verifier = TokenVerifier(settings)
        container = AppContainer(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            temporal=client,
            verifier=verifier,
            metrics=metrics,
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
    # body read and no work. The body limit must not sit outside the metrics
    # middleware, whose task group would wrap its error in an ExceptionGroup.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(ConcurrencyLimit, max_in_flight=settings.api_max_concurrent_requests)
    app.middleware("http")(metrics.middleware)
    install_error_handlers(app)
    app.include_router(health.router)
    # Each router carries its full "/v1/..." prefix, so route templates (metrics) are whole.
    for module in (
        service_types,
        consultants,
        service_limits,
        availability,
        search,
        consultation_requests,
        sessions,
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
    return app
