"""Submitting a consultation request: check it, name it, stage its details, start it.

The request id is chosen here. With an ``Idempotency-Key`` it is
``uuid5(namespace, "<requester>:<key>")``, so every retry of a submission, even
concurrent ones and ones reaching other API processes, names the same request and
so the same workflow: update-with-start reaches a running one instead of starting
another, and never starts a finished one again. A repeat finds the stored row
(200); one with a different body is refused (409) rather than silently answered
with the original. Submissions racing before the first is stored all go to the
workflow and all answer 201, with the same request; one that the first copy's
stored request or held slot would refuse gets that request instead (or 409
``submission-in-progress`` while it is being stored). Nothing is locked: no
database connection is held while the workflow works.

The free-text details are staged in the database under the request id before the
workflow starts (``activities.drafts``), so they never enter workflow history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api import consultation_workflow
from api import submission_checks as checks
from api.auth import Principal
from api.consultation_workflow import RequestClosedError
from api.container import AppContainer
from api.errors import (
    Conflict,
    IdempotencyKeyReused,
    ProblemError,
    RateLimited,
    SlotUnavailable,
    SubmissionInProgress,
)
from api.schemas.consultation_requests import ConsultationRequestCreate
from core.settings import Settings
from db.drafts import stage_details, take_details
from db.models import ConsultationRequest, ServiceType
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings

IDEMPOTENCY_NAMESPACE = uuid.UUID("6b1f3c9e-2a57-5d8e-9c4b-7f0a1e2d3c4b")
"""Fixed forever: changing it would give retried submissions new request ids."""


IN_PROGRESS_RETRY_AFTER_SECONDS = 1
"""Storing a request takes one workflow task: a retry a second later finds it."""


def request_id_for(requester_id: uuid.UUID, idempotency_key: str) -> uuid.UUID:
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{requester_id}:{idempotency_key}")


@dataclass(frozen=True)
class Submitted:
    request: ConsultationRequest
    created: bool


async def submit_request(
    container: AppContainer,
    session: AsyncSession,
    principal: Principal,
    body: ConsultationRequestCreate,
    idempotency_key: str | None,
) -> Submitted:
    """Store and start the request, or find the one this key already named."""
    if idempotency_key is None:
        request = await _checked(container, session, principal, body, uuid.uuid4(), None)
        return await _start(container, session, body, request)
    request_id = request_id_for(principal.user_id, idempotency_key)
    existing = await session.get(ConsultationRequest, request_id)
    if existing is not None:
        return _replayed(existing, body)
    try:
        request = await _checked(container, session, principal, body, request_id, idempotency_key)
    except (SlotUnavailable, RateLimited) as refused:
        return await _retry_of_a_started_submission(container, session, body, request_id, refused)
    return await _start(container, session, body, request)


async def _retry_of_a_started_submission(
    container: AppContainer,
    session: AsyncSession,
    body: ConsultationRequestCreate,
    request_id: uuid.UUID,
    refused: ProblemError,
) -> Submitted:
    """The slot and the open-request count are what other submissions change, and
    this key's own first copy may have changed them since the request was looked
    for: stored its request, held its slot. A retry of it gets that request, or,
    while it is still being stored, an "in progress" 409 with Retry-After (as the
    IETF Idempotency-Key draft has it); only a genuinely new submission is refused."""
    stored = await session.get(ConsultationRequest, request_id, populate_existing=True)
    if stored is not None:
        return _replayed(stored, body)
    await session.commit()  # no connection held while Temporal is asked
    if await consultation_workflow.is_running(container.temporal, request_id):
        raise SubmissionInProgress(
            "An earlier submission with this Idempotency-Key is still being stored; "
            "retry shortly with the same key.",
            headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER_SECONDS)},
            request_id=str(request_id),
        ) from refused
    raise refused


def _replayed(existing: ConsultationRequest, body: ConsultationRequestCreate) -> Submitted:
    if not _same_submission(existing, body):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; use a new key.",
            request_id=str(existing.id),
        )
    return Submitted(request=existing, created=False)


def _same_submission(row: ConsultationRequest, body: ConsultationRequestCreate) -> bool:
    # Without a preferred window the default one depends on the time of the first
    # submission, so the window is compared only when the client chose it; so is the
    # learner's zone (the default is a setting, which may change between retries).
    window_matches = not body.has_window or (
        row.preferred_start_time == body.preferred_start
        and row.preferred_end_time == body.preferred_end
    )
    zone_matches = body.learner_time_zone in (None, row.learner_time_zone)
    return (
        window_matches
        and zone_matches
        and (
            row.consultation_service_type_id,
            row.requested_slot_id,
            row.requested_start_time,
            row.preferred_consultant_user_id,
            row.company_id,
            row.request_details,
        )
        == (
            body.service_type_id,
            body.slot_id,
            body.start,
            body.preferred_consultant_id or body.consultant_id,
            body.company_id,
            body.details,
        )
    )


async def _checked(
    container: AppContainer,
    session: AsyncSession,
    principal: Principal,
    body: ConsultationRequestCreate,
    request_id: uuid.UUID,
    idempotency_key: str | None,
) -> ConsultationInput:
    """The workflow input, once what the submission names exists and fits."""
    settings = container.settings
    now = datetime.now(UTC)
    service_type = await checks.bookable_service_type(session, body.service_type_id)
    await checks.within_open_request_cap(
        session, principal.user_id, settings.max_open_requests_per_learner
    )
    duration = timedelta(minutes=service_type.default_duration_minutes)
    if body.start is not None:
        window = await checks.chosen_start_window(session, body, service_type, settings, now)
    elif body.slot_id is not None:
        window = await checks.slot_window(session, body, service_type, settings, now)
    else:
        if body.preferred_consultant_id is not None:
            await checks.existing_consultant(session, body.preferred_consultant_id)
        window = checks.preferred_window(
            body, duration, settings, now, checks.service_policy(service_type, settings)
        )
    return ConsultationInput(
        request_id=request_id,
        requester_id=principal.user_id,
        service_type_id=service_type.id,
        duration_minutes=service_type.default_duration_minutes,
        window_start=window.start,
        window_end=window.end,
        timings=_timings(settings, service_type),
        requested_slot_id=body.slot_id,
        preferred_consultant_id=body.preferred_consultant_id or body.consultant_id,
        company_id=body.company_id,
        idempotency_key=idempotency_key,
        details_staged=body.details is not None,
        open_request_cap=settings.max_open_requests_per_learner,
        requested_start=body.start,
        start_interval_minutes=checks.start_interval_minutes(service_type, settings),
        learner_time_zone=body.learner_time_zone or settings.default_learner_time_zone,
        service_type_name=service_type.name,
    )


async def _start(
    container: AppContainer,
    session: AsyncSession,
    body: ConsultationRequestCreate,
    request: ConsultationInput,
) -> Submitted:
    settings = container.settings
    request_id, idempotency_key = request.request_id, request.idempotency_key
    if body.details is not None:
        await stage_details(
            session, request_id=request_id, requester_id=request.requester_id, details=body.details
        )
    # Committed before the start: the workflow reads the draft over its own
    # connection. Nor is a connection held while the workflow works.
    await session.commit()
    try:
        await consultation_workflow.submit(
            container.temporal, request, task_queue=settings.temporal_task_queue
        )
    except RequestClosedError:
        await _discard_draft(session, request)
        stored = await session.get(ConsultationRequest, request_id)
        if stored is None:
            raise Conflict(
                "An earlier submission with this Idempotency-Key failed and cannot be "
                "retried; use a new key.",
                request_id=str(request_id),
            ) from None
        return _replayed(stored, body)
    except ProblemError as problem:
        if problem.status < 500:  # the workflow refused and ended: nobody takes the draft
            await _discard_draft(session, request)
        raise
    if body.details is not None:
        # Normally taken by the workflow already; only a retry racing the first
        # submission's commit can have staged a second copy.
        await _discard_draft(session, request)
    stored = await session.get(ConsultationRequest, request_id, populate_existing=True)
    if stored is None:  # the submit update answers only after the row committed
        raise RuntimeError(f"request {request_id} was submitted but is not stored")
    if idempotency_key is not None:
        # A concurrent submission of the same key may have started the workflow
        # with its own body.
        _replayed(stored, body)
    return Submitted(request=stored, created=True)


async def _discard_draft(session: AsyncSession, request: ConsultationInput) -> None:
    """Drop a staged draft no workflow will take."""
    if not request.details_staged:
        return
    await take_details(session, request_id=request.request_id, requester_id=request.requester_id)
    await session.commit()


def _timings(settings: Settings, service_type: ServiceType) -> LifecycleTimings:
    """The settings' timings with the service type's overrides: its confirmation
    timeout, minimum notice and requester cutoffs."""
    override = service_type.confirmation_timeout_seconds
    policy = checks.service_policy(service_type, settings)
    return replace(
        LifecycleTimings.from_settings(
            settings,
            confirmation_timeout_override=timedelta(seconds=override) if override else None,
        ),
        minimum_notice_seconds=policy.minimum_notice.total_seconds(),
        requester_cancel_cutoff_seconds=policy.cancel_cutoff.total_seconds(),
        requester_reschedule_cutoff_seconds=policy.reschedule_cutoff.total_seconds(),
    )
