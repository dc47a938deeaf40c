"""Consultant profiles: a consultant maintains their own, operators any."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import Boolean, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import ReturningInsert

from api.audit_trail import actor_of
from api.auth import Principal, Role
from api.deps import CurrentPrincipal, SessionDep, SignedIn
from api.errors import BadRequest, Forbidden, NotFound, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_cursor, encode_cursor
from api.schemas.consultants import (
    ConsultantProfileIn,
    ConsultantProfileOut,
    ConsultantProfilePatch,
    Specialization,
)
from core.vocabulary import AuditAction, AuditTarget
from db import audit
from db.models import ConsultantProfile

router = APIRouter(prefix="/v1/consultants", tags=["consultants"])

_NOT_NULL = frozenset({"specializations", "is_available_for_booking", "time_zone"})


def ensure_may_manage(principal: Principal, consultant_user_id: uuid.UUID) -> None:
    """Only the consultant themselves (with the consultant role) or an operator."""
    if principal.is_operator:
        return
    if principal.has(Role.CONSULTANT) and principal.user_id == consultant_user_id:
        return
    raise Forbidden("Only this consultant or an operator may change this profile.")


async def get_profile(session: SessionDep, consultant_user_id: uuid.UUID) -> ConsultantProfile:
    profile = await session.get(ConsultantProfile, consultant_user_id)
    if profile is None:
        raise NotFound(f"Consultant {consultant_user_id} has no profile.")
    return profile


@router.get("", summary="List consultants")
async def list_consultants(
    page: PageQuery,
    session: SessionDep,
    _: SignedIn,
    specialization: Annotated[
        Specialization | None, Query(description="Only consultants with this specialization")
    ] = None,
    available: Annotated[
        bool | None, Query(description="Only those open (or closed) for booking")
    ] = None,
) -> Page[ConsultantProfileOut]:
    query = (
        select(ConsultantProfile)
        .order_by(ConsultantProfile.consultant_user_id)
        .limit(page.limit + 1)
    )
    if specialization is not None:
        query = query.where(ConsultantProfile.specializations.contains([specialization]))
    if available is not None:
        query = query.where(ConsultantProfile.is_available_for_booking.is_(available))
    if page.cursor is not None:
        position = decode_cursor(page.cursor, frozenset({"id"}))
        try:
            after = uuid.UUID(str(position["id"]))
        except ValueError as exc:
            raise BadRequest("The cursor is not one this API issued.") from exc
        query = query.where(ConsultantProfile.consultant_user_id > after)
    rows = list((await session.scalars(query)).all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor({"id": str(rows[-1].consultant_user_id)})
    return Page(
        items=[ConsultantProfileOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/{consultant_user_id}", summary="Get a consultant's profile", responses=problems(404))
async def get_consultant(
    consultant_user_id: uuid.UUID, session: SessionDep, _: SignedIn
) -> ConsultantProfileOut:
    return ConsultantProfileOut.model_validate(await get_profile(session, consultant_user_id))


@router.put(
    "/{consultant_user_id}",
    summary="Create or replace a consultant's profile",
    responses={
        201: {"description": "Created"},
        200: {"description": "Replaced"},
        **problems((403, "Not this consultant, nor an operator")),
    },
)
async def put_consultant(
    consultant_user_id: uuid.UUID,
    body: ConsultantProfileIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
) -> ConsultantProfileOut:
    ensure_may_manage(principal, consultant_user_id)
    values = body.model_dump()
    before = await audit.locked_snapshot(session, ConsultantProfile, consultant_user_id)
    # One upsert statement, so two concurrent PUTs of a new profile cannot both insert;
    # ``xmax = 0`` tells a fresh row from an updated one.
    upsert: ReturningInsert[tuple[bool]] = (
        pg_insert(ConsultantProfile)
        .values(consultant_user_id=consultant_user_id, **values)
        .on_conflict_do_update(index_elements=[ConsultantProfile.consultant_user_id], set_=values)
        .returning(literal_column("xmax = 0", Boolean))
    )
    created = bool((await session.execute(upsert)).scalar_one())
    profile = await session.get(ConsultantProfile, consultant_user_id, populate_existing=True)
    assert profile is not None  # just written
    await audit.record(
        session,
        actor=actor_of(principal),
        action=(
            AuditAction.CONSULTANT_PROFILE_CREATED
            if created
            else AuditAction.CONSULTANT_PROFILE_REPLACED
        ),
        target_type=AuditTarget.CONSULTANT_PROFILE,
        target_id=consultant_user_id,
        # A profile another PUT created between the locked read and the upsert reads
        # as new here: the lock cannot cover a row that did not exist yet.
        changed=audit.changes(None if created else before, audit.snapshot(profile)),
    )
    await session.commit()
    if created:
        response.status_code = status.HTTP_201_CREATED
    return ConsultantProfileOut.model_validate(profile)


@router.patch(
    "/{consultant_user_id}",
    summary="Change parts of a consultant's profile",
    responses=problems((403, "Not this consultant, nor an operator"), 404),
)
async def patch_consultant(
    consultant_user_id: uuid.UUID,
    body: ConsultantProfilePatch,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ConsultantProfileOut:
    ensure_may_manage(principal, consultant_user_id)
    before = await audit.locked_snapshot(session, ConsultantProfile, consultant_user_id)
    profile = await get_profile(session, consultant_user_id)
    changes = body.model_dump(exclude_unset=True)
    for field in sorted(_NOT_NULL & {k for k, v in changes.items() if v is None}):
        raise Unprocessable(f"{field} cannot be null.")
    for field, value in changes.items():
        setattr(profile, field, value)
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.CONSULTANT_PROFILE_UPDATED,
        target_type=AuditTarget.CONSULTANT_PROFILE,
        target_id=consultant_user_id,
        changed=audit.changes(before, audit.snapshot(profile)),
    )
    await session.commit()
    await session.refresh(profile)
    return ConsultantProfileOut.model_validate(profile)
