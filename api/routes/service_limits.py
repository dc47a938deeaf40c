"""A consultant's caps on sessions of one service type: the consultant sets their
own, operators any. Caps of any type live on the profile."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from api.audit_trail import actor_of
from api.deps import CurrentPrincipal, SessionDep, SignedIn
from api.errors import NotFound
from api.openapi import problems
from api.routes.consultants import ensure_may_manage, get_profile
from api.schemas.consultants import ServiceLimitIn, ServiceLimitOut
from core.vocabulary import AuditAction, AuditTarget
from db import audit
from db.models import ConsultantServiceLimit, ServiceType

router = APIRouter(prefix="/v1/consultants", tags=["consultants"])

Limit = ConsultantServiceLimit


@router.get(
    "/{consultant_user_id}/service-limits",
    summary="List a consultant's caps per service type",
    responses=problems(404),
)
async def list_service_limits(
    consultant_user_id: uuid.UUID, session: SessionDep, _: SignedIn
) -> list[ServiceLimitOut]:
    await get_profile(session, consultant_user_id)
    rows = await session.scalars(
        select(Limit)
        .where(Limit.consultant_user_id == consultant_user_id)
        .order_by(Limit.consultation_service_type_id)
    )
    return [ServiceLimitOut.model_validate(row) for row in rows]


@router.put(
    "/{consultant_user_id}/service-limits/{service_type_id}",
    summary="Set a consultant's caps on sessions of one service type",
    description=(
        "At most `max_sessions_per_day` / `max_sessions_per_week` sessions of this type, "
        "counted on the consultant's clock; the caps of any type on the profile apply "
        "too. Holds awaiting a confirmation count. Existing bookings are kept: a cap "
        "only stops new ones."
    ),
    responses=problems((403, "Not this consultant, nor an operator"), 404),
)
async def put_service_limit(
    consultant_user_id: uuid.UUID,
    service_type_id: uuid.UUID,
    body: ServiceLimitIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ServiceLimitOut:
    ensure_may_manage(principal, consultant_user_id)
    await get_profile(session, consultant_user_id)
    if await session.get(ServiceType, service_type_id) is None:
        raise NotFound(f"Service type {service_type_id} does not exist.")
    key = (consultant_user_id, service_type_id)
    before = await audit.locked_snapshot(session, Limit, key)
    values = body.model_dump()
    await session.execute(
        pg_insert(Limit)
        .values(
            consultant_user_id=consultant_user_id,
            consultation_service_type_id=service_type_id,
            **values,
        )
        .on_conflict_do_update(
            index_elements=[Limit.consultant_user_id, Limit.consultation_service_type_id],
            set_=values,
        )
    )
    row = await session.get(Limit, key, populate_existing=True)
    assert row is not None  # just written
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.CONSULTANT_SERVICE_LIMIT_SET,
        target_type=AuditTarget.CONSULTANT_PROFILE,
        target_id=consultant_user_id,
        changed=audit.changes(before, audit.snapshot(row)),
    )
    await session.commit()
    return ServiceLimitOut.model_validate(row)


@router.delete(
    "/{consultant_user_id}/service-limits/{service_type_id}",
    summary="Remove a consultant's caps on one service type",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems((403, "Not this consultant, nor an operator"), 404),
)
async def delete_service_limit(
    consultant_user_id: uuid.UUID,
    service_type_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    ensure_may_manage(principal, consultant_user_id)
    key = (consultant_user_id, service_type_id)
    before = await audit.locked_snapshot(session, Limit, key)
    row = await session.get(Limit, key)
    if row is None:
        raise NotFound(f"Consultant {consultant_user_id} has no caps on {service_type_id}.")
    await session.delete(row)
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.CONSULTANT_SERVICE_LIMIT_REMOVED,
        target_type=AuditTarget.CONSULTANT_PROFILE,
        target_id=consultant_user_id,
        changed=audit.changes(before, None),
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
