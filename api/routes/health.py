"""Liveness, readiness and metrics for orchestrators and scrapers."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ContainerDep
from db.event_feed import feed_lag

logger = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0

CheckOutcome = Literal["ok", "unreachable"]


class ReadinessChecks(BaseModel):
    database: CheckOutcome
    temporal: CheckOutcome


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="PostgreSQL and Temporal are reachable",
    response_model=Readiness,
    responses={503: {"description": "A dependency is not reachable", "model": Readiness}},
)
async def readyz(container: ContainerDep) -> JSONResponse:
    database: CheckOutcome = "ok"
    temporal: CheckOutcome = "ok"
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with container.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", never a 500
        logger.warning("readiness: database unreachable: %s", exc)
        database = "unreachable"
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await container.temporal.service_client.check_health()
    except Exception as exc:
        logger.warning("readiness: temporal unreachable: %s", exc)
        temporal = "unreachable"
    ready = database == temporal == "ok"
    readiness = Readiness(
        status="ready" if ready else "not_ready",
        checks=ReadinessChecks(database=database, temporal=temporal),
    )
    return JSONResponse(readiness.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(container: ContainerDep) -> Response:
    feed = container.metrics.feed
    try:
        async with (
            asyncio.timeout(READINESS_TIMEOUT_SECONDS),
            container.session_factory() as session,
        ):
            feed.observe(await feed_lag(session))
    except Exception as exc:  # a scrape never fails because the database is down
        logger.warning("metrics: event feed lag unknown: %s", exc)
        feed.unknown()
    return Response(generate_latest(container.metrics.registry), media_type=CONTENT_TYPE_LATEST)
