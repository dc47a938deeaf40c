"""The Temporal SDK's own metrics, served for Prometheus by the worker.

The SDK's core keeps them (task slots, poll and schedule-to-start latencies, the
sticky cache, requests to the server) and serves them itself: a Prometheus endpoint
is part of the SDK runtime, a thread pool of its core that every client and worker of
the process is bound to. So the runtime is built once per process, before the first
client connects, and handed to that client (``connect_temporal(runtime=…)``); the
workers built on the client inherit it. A second runtime would be a second thread pool
and could not bind the same address.
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.settings import Settings


def worker_runtime(settings: Settings) -> Runtime | None:
    """A runtime serving ``/metrics`` on ``BOOKING_WORKER_METRICS_ADDRESS``; ``None``
    (the SDK's default runtime, no endpoint) when that is unset.

    The SDK's own names and units (durations in milliseconds), as Temporal's
    documentation of SDK metrics lists them (``temporal_request``,
    ``temporal_workflow_task_schedule_to_start_latency``). The Prometheus-style
    suffixes (``_seconds``, ``_total``) were tried and not kept: they rename every
    metric away from that documentation, and turn the core's ``local_activity_total``
    into ``temporal_local_activity_total_total``. Raises ``ValueError`` when the
    address cannot be bound.
    """
    if settings.worker_metrics_address is None:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)
        )
    )
