"""What the API process owns for its lifetime: settings, database, Temporal, verifier,
and the rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import TokenVerifier
from api.metrics import HttpMetrics
from api.rate_limit import Limit, RateLimiter, RateLimits
from api.shared_rate_limit import SharedRateLimiter
from core.settings import RateLimitScope, Settings
from core.vocabulary import CallKind
from db.engine import create_autocommit_engine

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider


@dataclass
class AppContainer:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    temporal: Client
    verifier: TokenVerifier
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
    # Tracing on: the shared rate limit's statements are spans of their request too.
    tracer_provider: TracerProvider | None = None
    rate_limits: RateLimits = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        local = RateLimiter(
            read=Limit(settings.rate_limit_read_per_second, settings.rate_limit_read_burst),
            write=Limit(settings.rate_limit_write_per_second, settings.rate_limit_write_burst),
        )
        shared = None
        if settings.rate_limit_scope is RateLimitScope.GLOBAL:
            shared = SharedRateLimiter(
                create_autocommit_engine(
                    settings,
                    application_name="booking-api-rate-limits",
                    pool_size=settings.rate_limit_pool_size,
                    tracer_provider=self.tracer_provider,
                )
            )
        self.rate_limits = RateLimits(local, shared, self.metrics.rate_limits)

    @property
    def shares_rate_limits(self) -> bool:
        """Whether this process spends from the shared buckets (and so sweeps them)."""
        limits = (self.rate_limits.local.limit(kind) for kind in CallKind)
        return self.rate_limits.shared is not None and any(limit.enabled for limit in limits)
