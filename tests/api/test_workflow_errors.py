"""How the workflow's answers become HTTP problems: by error type and RPC status,
never by message text."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import consultation_workflow
from api.consultation_workflow import refusal
from api.errors import ProblemError
from core.vocabulary import ErrorType

EXPECTED_STATUS = {
    ErrorType.NOT_ALLOWED: 403,
    ErrorType.INVALID_STATE: 409,
    ErrorType.DEADLINE_PASSED: 409,
    ErrorType.BUSY: 409,
    ErrorType.REQUEST_FINISHED: 409,
    ErrorType.SLOT_UNAVAILABLE: 409,
    ErrorType.HOLD_LOST: 409,
    ErrorType.NO_FITTING_SLOT: 409,
    ErrorType.DUPLICATE_IDEMPOTENCY_KEY: 409,
    ErrorType.INVALID_REQUEST: 422,
    ErrorType.MEETING_PLATFORM_REJECTED: 502,
    ErrorType.OPEN_REQUEST_LIMIT: 429,
    ErrorType.SCHEDULING_POLICY: 409,
    ErrorType.CONSULTANT_BUSY: 409,
}


def test_every_error_type_has_a_status() -> None:
    assert set(EXPECTED_STATUS) == set(ErrorType)
    for error_type, status in EXPECTED_STATUS.items():
        problem = refusal(ApplicationError("the reason", type=error_type.value))
        assert problem is not None
        assert problem.status == status, error_type
        assert problem.detail == "The reason."


def test_the_open_request_limit_says_how_many_and_when_to_retry() -> None:
    problem = refusal(
        ApplicationError("over the cap", 5, 5, type=ErrorType.OPEN_REQUEST_LIMIT.value)
    )
    assert problem is not None
    assert problem.status == 429
    assert problem.extensions == {"open_requests": 5, "limit": 5}
    assert problem.headers is not None
    assert problem.headers["Retry-After"].isdigit()


def test_a_scheduling_policy_refusal_names_the_policy() -> None:
    problem = refusal(
        ApplicationError(
            "a scheduling policy forbids it", "daily_cap", type=ErrorType.SCHEDULING_POLICY.value
        )
    )
    assert problem is not None
    assert problem.status == 409
    assert problem.slug == "scheduling-policy"
    assert problem.extensions == {"policy": "daily_cap"}


def test_only_typed_application_errors_are_refusals() -> None:
    assert refusal(ApplicationError("untyped")) is None
    assert refusal(ApplicationError("other", type="UnexpectedState")) is None
    assert refusal(RuntimeError("boom")) is None
    assert refusal(None) is None


def test_a_reused_key_names_the_request_it_belongs_to() -> None:
    other = uuid.uuid4()
    problem = refusal(
        ApplicationError(
            "the key belongs to another request",
            str(other),
            type=ErrorType.DUPLICATE_IDEMPOTENCY_KEY.value,
        )
    )
    assert problem is not None
    assert problem.extensions == {"request_id": str(other)}


async def _raise(error: BaseException) -> None:
    raise error


def _rpc(status: RPCStatusCode) -> RPCError:
    return RPCError("rpc failed", status, b"")


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (
            WorkflowUpdateFailedError(ApplicationError("no", type=ErrorType.NOT_ALLOWED.value)),
            403,
            "forbidden",
        ),
        (_rpc(RPCStatusCode.NOT_FOUND), 409, "request-finished"),
        (_rpc(RPCStatusCode.UNAVAILABLE), 503, "service-unavailable"),
        (RuntimeError("Failed client connect"), 503, "service-unavailable"),
        (WorkflowUpdateRPCTimeoutOrCancelledError(), 504, "workflow-timeout"),
        (TimeoutError(), 504, "workflow-timeout"),
    ],
)
async def test_failed_calls_become_problems(error: BaseException, status: int, slug: str) -> None:
    with pytest.raises(ProblemError) as raised:
        await consultation_workflow._bounded(uuid.uuid4(), _raise(error))
    assert (raised.value.status, raised.value.slug) == (status, slug)


async def test_an_unexpected_update_failure_is_not_hidden() -> None:
    failure = WorkflowUpdateFailedError(ValueError("a bug"))
    call: Awaitable[None] = _raise(failure)
    with pytest.raises(WorkflowUpdateFailedError):
        await consultation_workflow._bounded(uuid.uuid4(), call)
