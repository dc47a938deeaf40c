"""The one place that knows how to reach Temporal (used by the API and the worker)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.runtime import Runtime

from core.settings import Settings

logger = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
LONGEST_RETRY_S = 5.0


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS for Temporal Cloud or a secured cluster; an API key implies TLS."""
    if not settings.temporal_tls and settings.temporal_api_key is None:
        return False
    return TLSConfig(
        client_cert=_read(settings.temporal_tls_client_cert_path),
        client_private_key=_read(settings.temporal_tls_client_key_path),
        server_root_ca_cert=_read(settings.temporal_tls_server_ca_path),
        domain=settings.temporal_tls_server_name,
    )


async def connect_temporal(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect with the configured address, namespace, TLS and API key.

    ``lazy`` defers the connection to the first call, so the API can start (and report
    not-ready) while Temporal is still coming up. ``interceptors`` (the tracing one,
    when tracing is on) also apply to every worker built on this client. ``runtime``:
    the process's one SDK runtime when it has its own (metrics; see
    ``integrations.observability.temporal_metrics``), else the SDK's default.
    """
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls_config(settings),
        lazy=lazy,
        interceptors=interceptors,
        runtime=runtime,
    )


async def wait_for_temporal(
    settings: Settings,
    *,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect, retrying with backoff while the server cannot be reached (starting,
    restarting) for up to ``temporal_connect_timeout``; then the last error is raised.

    A worker started while Temporal is down waits for it instead of exiting at once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.temporal_connect_timeout.total_seconds()
    delay = FIRST_RETRY_S
    while True:
        try:
            return await connect_temporal(settings, interceptors=interceptors, runtime=runtime)
        except RuntimeError as exc:  # how the SDK reports a failed connection
            if loop.time() + delay > deadline:
                raise
            logger.warning(
                "Temporal at %s is not reachable (%s); retrying in %.1f s",
                settings.temporal_address,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, LONGEST_RETRY_S)
