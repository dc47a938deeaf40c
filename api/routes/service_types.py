"""Consultation service types: anyone may read, operators curate."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import literal, select, tuple_
from sqlalchemy.exc import IntegrityError

from api.audit_trail import actor_of
from api.deps import OperatorPrincipal, SessionDep, SignedIn
from api.errors import BadRequest, Conflict, NotFound, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_cursor, encode_cursor
from api.schemas.service_types import ServiceTypeCreate, ServiceTypeOut, ServiceTypePatch
from core.vocabulary import AuditAction, AuditTarget
from db import audit
from db.errors import constraint_name
from db.models import ServiceType

router = APIRouter(prefix="/v1/service-types", tags=["service types"])

_NOT_NULL = frozenset({"name", "default_duration_minutes", "is_active"})


async def _get(session: SessionDep, service_type_id: uuid.UUID) -> ServiceType:
    service_type = await session.get(ServiceType, service_type_id)
    if service_type is None:
        raise NotFound(f"Service type {service_type_id} does not exist.")
    return service_type


async def _commit_audited(
    session: SessionDep,
    service_type: ServiceType,
    *,
    actor: audit.Actor,
    action: AuditAction,
    before: audit.Snapshot | None,
) -> None:
    """Write the change and its audit row in one transaction; a taken name is a 409
    (and leaves neither)."""
    name = service_type.name  # the rollback expires the row's attributes
    try:
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action=action,
            target_type=AuditTarget.SERVICE_TYPE,
            target_id=service_type.id,
            changed=audit.changes(before, audit.snapshot(service_type)),
        )
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        if constraint_name(exc) == "uq_consultation_service_types_name":
            raise Conflict(f"A service type named {name!r} already exists.") from exc
        raise


@router.get("", summary="List service types")
async def list_service_types(
    page: PageQuery,
    session: SessionDep,
    _: SignedIn,
    active: Annotated[bool | None, Query(description="Only active (or inactive) ones")] = None,
) -> Page[ServiceTypeOut]:
    query = select(ServiceType).order_by(ServiceType.name, ServiceType.id).limit(page.limit + 1)
    if active is not None:
        query = query.where(ServiceType.is_active.is_(active))
    if page.cursor is not None:
        position = decode_cursor(page.cursor, frozenset({"name", "id"}))
        try:
            after_id = uuid.UUID(str(position["id"]))
        except ValueError as exc:
            raise BadRequest("The cursor is not one this API issued.") from exc
        query = query.where(
            tuple_(ServiceType.name, ServiceType.id)
            > tuple_(literal(str(position["name"])), literal(after_id))
        )
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor({"name": rows[-1].name, "id": str(rows[-1].id)})
    return Page(items=[ServiceTypeOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{service_type_id}", summary="Get a service type", responses=problems(404))
async def get_service_type(
    service_type_id: uuid.UUID, session: SessionDep, _: SignedIn
) -> ServiceTypeOut:
    return ServiceTypeOut.model_validate(await _get(session, service_type_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a service type (operator)",
    responses=problems((409, "The name is taken")),
)
async def create_service_type(
    body: ServiceTypeCreate, session: SessionDep, principal: OperatorPrincipal
) -> ServiceTypeOut:
    service_type = ServiceType(**body.model_dump())
    session.add(service_type)
    await _commit_audited(
        session,
        service_type,
        actor=actor_of(principal),
        action=AuditAction.SERVICE_TYPE_CREATED,
        before=None,
    )
    await session.refresh(service_type)
    return ServiceTypeOut.model_validate(service_type)


@router.patch(
    "/{service_type_id}",
    summary="Change a service type (operator)",
    responses=problems(404, (409, "The name is taken")),
)
async def patch_service_type(
    service_type_id: uuid.UUID,
    body: ServiceTypePatch,
    session: SessionDep,
    principal: OperatorPrincipal,
) -> ServiceTypeOut:
    before = await audit.locked_snapshot(session, ServiceType, service_type_id)
    service_type = await _get(session, service_type_id)
    changes = body.model_dump(exclude_unset=True)
    for field in _NOT_NULL & {k for k, v in changes.items() if v is None}:
        raise Unprocessable(f"{field} cannot be null.")
    for field, value in changes.items():
        setattr(service_type, field, value)
    await _commit_audited(
        session,
        service_type,
        actor=actor_of(principal),
        action=AuditAction.SERVICE_TYPE_UPDATED,
        before=before,
    )
    await session.refresh(service_type)
    return ServiceTypeOut.model_validate(service_type)
