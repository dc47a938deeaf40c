"""A loopback OTLP/HTTP receiver: accepts ``POST /v1/traces`` as a collector would and
keeps the count of spans per ``service.name`` (and, on request, the spans' names).

What the service's exporter talks to in the tests and the tracing benchmark, so that
"tracing on" pays for the real export (protobuf encoding, the HTTP round trip) without
a collector installed. Runs in a thread of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACES_PATH = "/v1/traces"


class OtlpSink:
    def __init__(self, *, keep_names: bool = False) -> None:
        self.spans: Counter[str] = Counter()
        """Spans received, by the ``service.name`` of their resource."""
        self.names: list[tuple[str, str]] = []
        """(service.name, span name) of every span, with ``keep_names``."""
        self.requests = 0
        self._keep_names = keep_names
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-sink", daemon=True
        )

    @property
    def endpoint(self) -> str:
        """What ``BOOKING_OTLP_ENDPOINT`` is set to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        attribute.value.string_value
                        for attribute in resource_spans.resource.attributes
                        if attribute.key == "service.name"
                    ),
                    "",
                )
                for scope_spans in resource_spans.scope_spans:
                    self.spans[service] += len(scope_spans.spans)
                    if self._keep_names:
                        self.names.extend((service, span.name) for span in scope_spans.spans)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != TRACES_PATH:
                    self.send_error(404)
                    return
                sink._record(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: one line per export would drown the benchmark's log."""

        return Handler
