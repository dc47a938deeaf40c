"""What crosses the boundary of a person's erasure: its names, input, activities'
inputs and outputs, and result.

The person is named by their pseudonym only: their id stays in PostgreSQL
(``person_erasures.subject_id``, cleared when the erasure ends), so it never enters
this workflow's history, which outlives the erasure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.vocabulary import ErasureStep, OpenRequestAction

WORKFLOW_NAME = "PersonErasureWorkflow"
WORKFLOW_ID_PREFIX = "person-erasure-"

# The consultation workflow's updates the erasure sends (their method names).
CANCEL_UPDATE = "cancel"
DECLINE_UPDATE = "decline"

ERASURE_ACTOR = uuid.UUID(int=0)
"""The actor of an erasure's cancellations when the IAM (no operator) asked for it."""


def erasure_workflow_id(pseudonym: uuid.UUID) -> str:
    return f"{WORKFLOW_ID_PREFIX}{pseudonym}"


class ErasureActivity(StrEnum):
    RECORD_STEP = "erasure.record_step"
    CLOSE_FOR_BOOKING = "erasure.close_for_booking"
    OPEN_REQUESTS = "erasure.open_requests"
    SETTLE_REQUEST = "erasure.settle_request"
    FORGET_WORKFLOWS = "erasure.forget_workflows"
    DELETE_FREE_TEXT = "erasure.delete_free_text"
    PSEUDONYMISE_EVENTS = "erasure.pseudonymise_events"
    PSEUDONYMISE_ROWS = "erasure.pseudonymise_rows"
    FINISH = "erasure.finish"


@dataclass(frozen=True, kw_only=True)
class ErasureInput:
    pseudonym: uuid.UUID
    batch_size: int = 500
    event_span: int = 5000


@dataclass(frozen=True, kw_only=True)
class StepInput:
    pseudonym: uuid.UUID
    step: ErasureStep


@dataclass(frozen=True, kw_only=True)
class PersonRef:
    pseudonym: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class OpenRequestsInput:
    pseudonym: uuid.UUID
    limit: int


@dataclass(frozen=True, kw_only=True)
class OpenRequestItem:
    request_id: uuid.UUID
    action: OpenRequestAction
    until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class OpenRequestList:
    items: tuple[OpenRequestItem, ...]


@dataclass(frozen=True, kw_only=True)
class SettleInput:
    pseudonym: uuid.UUID
    request_id: uuid.UUID
    action: OpenRequestAction


@dataclass(frozen=True, kw_only=True)
class SettleResult:
    """``wait_until``: its session turned out to be in progress; it ends then."""

    settled: bool
    wait_until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ForgetInput:
    pseudonym: uuid.UUID
    after: uuid.UUID | None
    limit: int


@dataclass(frozen=True, kw_only=True)
class ForgetResult:
    deleted: int
    next_after: uuid.UUID | None


@dataclass(frozen=True, kw_only=True)
class BatchInput:
    pseudonym: uuid.UUID
    limit: int


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    changed: int


@dataclass(frozen=True, kw_only=True)
class EventsInput:
    pseudonym: uuid.UUID
    after_sequence: int
    span: int


@dataclass(frozen=True, kw_only=True)
class EventsResult:
    changed: int
    next_after: int | None


@dataclass(kw_only=True)
class ErasureSummary:
    """What the erasure did, in counts (never what it erased)."""

    cancelled: int = 0
    declined: int = 0
    workflows_deleted: int = 0
    free_text_cleared: int = 0
    events_pseudonymised: int = 0
    rows_pseudonymised: int = 0
    steps_done: list[ErasureStep] = field(default_factory=list)
