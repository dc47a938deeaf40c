"""``GET /v1/audit-log`` (operators): every change to the catalogue and configuration."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import OperatorPrincipal, SessionDep
from api.errors import Unprocessable
from api.pagination import Page, PageQuery, decode_time_cursor, encode_time_cursor, keyset_page
from api.schemas.audit import AuditEntryOut
from api.schemas.fields import IsoAwareDatetime
from core.vocabulary import AuditAction, AuditTarget
from db import audit

router = APIRouter(prefix="/v1/audit-log", tags=["audit log"])


@router.get(
    "",
    summary="Read the audit trail, newest first (operator)",
    description=(
        "Who changed which service type, consultant profile, availability or webhook "
        "configuration, when, and the fields before and after. Every filter given must "
        "hold; `from`/`to` bound the time as [from, to)."
    ),
)
async def read_audit_log(
    page: PageQuery,
    session: SessionDep,
    _: OperatorPrincipal,
    actor_id: Annotated[uuid.UUID | None, Query(description="Changes made by this user")] = None,
    actions: Annotated[
        list[AuditAction] | None, Query(alias="action", description="Repeatable")
    ] = None,
    target_type: Annotated[AuditTarget | None, Query()] = None,
    target_id: Annotated[uuid.UUID | None, Query(description="One record's history")] = None,
    since: Annotated[IsoAwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[IsoAwareDatetime | None, Query(alias="to")] = None,
) -> Page[AuditEntryOut]:
    if since is not None and until is not None and until <= since:
        raise Unprocessable("`to` must be after `from`.")
    criteria = audit.AuditFilter(
        actor_id=actor_id,
        actions=actions or (),
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    rows = await audit.list_entries(
        session,
        criteria,
        before=decode_time_cursor(page.cursor) if page.cursor else None,
        limit=page.limit + 1,
    )
    return keyset_page(
        rows,
        page.limit,
        AuditEntryOut.model_validate,
        lambda last: encode_time_cursor(last.occurred_at, last.id),
    )
