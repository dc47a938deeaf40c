"""Which spans start a trace.

A trace starts where work enters a process: an HTTP request to the API, an activity
task on the worker (both SERVER spans); everything else joins the trace it was
called in. SQL statements with no trace around them, from the loops that run beside
the requests (the webhook dispatcher's polling, the draft sweeper, the readiness and
metrics endpoints, which are not traced), are dropped instead of each becoming a
trace of one span every second.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class EntryPointsOnly(Sampler):
    """For spans without a parent: sample the entry points (SERVER spans), drop the rest."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.SERVER:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return SamplingResult(Decision.DROP, None, trace_state)

    def get_description(self) -> str:
        return "EntryPointsOnly"


def entry_points_sampler() -> Sampler:
    """Children follow their parent's decision (also one made in another process and
    carried in a ``traceparent`` or a Temporal header); roots only at entry points."""
    return ParentBased(root=EntryPointsOnly())
