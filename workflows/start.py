"""How a starter (the API, the tests) starts a request's workflow.

Not imported by workflow code: it uses the client side of the SDK.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from core.vocabulary import RequestStatus
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import RequestDetails
from workflows.contracts.names import workflow_id_for
from workflows.contracts.workflow_input import ConsultationInput
from workflows.presentation import minute, service_name, short_id
from workflows.search_attributes import (
    BOOKING_STATUS,
    REQUESTER_ID,
    SERVICE_TYPE_ID,
)


def static_summary(request: ConsultationInput) -> str:
    """One line for the Temporal UI: the service type by name, who asks (a short id:
    no personal data) and when, to the minute with the zone, e.g. ``Career coaching
    (60 min) for learner 1a2b3c4d, from Tue 8 Dec 09:00 UTC``."""
    when = request.window_start

    def at(moment: datetime) -> str:
        return minute(moment, reference=when)

    summary = (
        f"{service_name(request)} ({request.duration_minutes} min) "
        f"for learner {short_id(request.requester_id)}, "
    )
    if request.requested_start is not None:
        summary += f"from {at(request.requested_start)}"
    else:
        summary += f"between {at(request.window_start)} and {at(request.window_end)}"
    if request.preferred_consultant_id is not None:
        binding = "with" if request.only_consultant_id is not None else "prefers"
        summary += f", {binding} consultant {short_id(request.preferred_consultant_id)}"
    if request.requested_slot_id is not None:
        summary += f", slot {short_id(request.requested_slot_id)}"
    return summary


def initial_search_attributes(request: ConsultationInput) -> TypedSearchAttributes:
    """Set at start, so the request is searchable before its first workflow task."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(BOOKING_STATUS, RequestStatus.PENDING_ASSIGNMENT.value),
            SearchAttributePair(REQUESTER_ID, str(request.requester_id)),
            SearchAttributePair(SERVICE_TYPE_ID, str(request.service_type_id)),
        ]
    )


def start_operation(
    request: ConsultationInput, *, task_queue: str
) -> WithStartWorkflowOperation[ConsultationWorkflow, RequestDetails]:
    """The start half of the submit update-with-start.

    A repeated submit of a running request reaches the same workflow
    (``USE_EXISTING``) and gets its current details; a finished request is never
    started again (``REJECT_DUPLICATE``): the caller then reads the stored row.
    """
    return WithStartWorkflowOperation(
        ConsultationWorkflow.run,
        request,
        id=workflow_id_for(request.request_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=initial_search_attributes(request),
        static_summary=static_summary(request),
    )
