"""How a starter (the API, the tests) starts a request's workflow.

Not imported by workflow code: it uses the client side of the SDK.
"""

from __future__ import annotations

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
from workflows.search_attributes import (
    BOOKING_STATUS,
    REQUESTER_ID,
    SERVICE_TYPE_ID,
)


def static_summary(request: ConsultationInput) -> str:
    """One line for the Temporal UI list; ids and times only (no personal data)."""
    return (
        f"Consultation request {request.request_id}: service type {request.service_type_id}, "
        f"{request.duration_minutes} min between {request.window_start.isoformat()} "
        f"and {request.window_end.isoformat()}"
    )


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
