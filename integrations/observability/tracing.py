"""OpenTelemetry traces: one tracer provider per process, exported over OTLP/HTTP.

Off unless ``BOOKING_OTLP_ENDPOINT`` is set. Off, ``start_tracing`` returns ``None``
without importing the SDK, and the callers install nothing: no ASGI middleware, no
SQL event listeners, no Temporal interceptor, the workflow sandbox as it is.

On, every part is handed the provider explicitly instead of a process-global one, so
that two services in one process (the tests) keep their own ``service.name`` and no
library starts spans behind the service's back.

OTLP over HTTP/protobuf rather than gRPC: the Temporal SDK reaches its server through
its own Rust core, so the gRPC exporter would bring ``grpcio`` (a large native
package) for this one use, where the HTTP exporter needs only ``requests`` and
``protobuf``, both installed already; every collector, Jaeger and Tempo accept it
on port 4318.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.contrib.opentelemetry import TracingInterceptor

API_SERVICE_NAME = "booking-api"
WORKER_SERVICE_NAME = "booking-worker"
TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class Tracing:
    """The process's tracer provider, and what the Temporal client gets from it."""

    provider: TracerProvider

    def temporal_interceptor(self) -> TracingInterceptor:
        """Spans for client calls (start, update, signal, query), workflow tasks and
        activities, local ones included; the trace context travels in Temporal headers
        from the API's call to the workflow and on to its activities."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return TracingInterceptor(self.provider.get_tracer("temporalio"))

    def shutdown(self) -> None:
        """Send what is still queued (bounded by the exporter's timeout) and stop."""
        self.provider.shutdown()


def start_tracing(settings: Settings, *, service_name: str) -> Tracing | None:
    """Tracing to ``settings.otlp_endpoint``; ``None`` when it is not configured."""
    if settings.otlp_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = tracer_provider(service_name)
    # Batched: spans leave from a background thread, never on a request's path.
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint)))
    )
    return Tracing(provider)


def tracer_provider(service_name: str) -> TracerProvider:
    """A provider with the process's resource and sampler and no exporter yet.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` are honoured, and
    ``OTEL_TRACES_SAMPLER`` replaces the service's sampler when it is set.
    """
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    from integrations.observability.sampling import entry_points_sampler

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    # None lets the SDK read OTEL_TRACES_SAMPLER (and its argument) itself.
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else entry_points_sampler()
    return TracerProvider(resource=resource, sampler=sampler)


def traces_url(endpoint: str) -> str:
    """The receiver's traces URL: ``http://collector:4318`` → ``…/v1/traces``."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH
