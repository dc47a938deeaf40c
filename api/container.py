"""What the API process owns for its lifetime: settings, database, Temporal, verifier."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.auth import TokenVerifier
from api.metrics import HttpMetrics
from booking.settings import Settings


@dataclass
class AppContainer:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    temporal: Client
    verifier: TokenVerifier
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
