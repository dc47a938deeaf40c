"""What the API process owns for its lifetime: settings, database, Temporal, verifier."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import TokenVerifier
from api.metrics import HttpMetrics
from api.rate_limit import Limit, RateLimiter
from core.settings import Settings


@dataclass
class AppContainer:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    temporal: Client
    verifier: TokenVerifier
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
    rate_limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(
            read=Limit(
                self.settings.rate_limit_read_per_second, self.settings.rate_limit_read_burst
            ),
            write=Limit(
                self.settings.rate_limit_write_per_second, self.settings.rate_limit_write_burst
            ),
        )
