"""Staged request details: how the free text reaches the request row without ever
passing through a workflow history.

The API stores the details under the request id it chose (``stage_details``),
then starts the workflow with ``details_staged=True``; ``persist_request`` takes
the text (``take_details``) and deletes the draft in the transaction that inserts
the request. A draft older than a TTL is swept by the worker, but only once no
workflow can take it any more (its request is stored, or its workflow never
started or has closed): a workflow that waited long for a worker still finds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, exists, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ConsultationRequest, ConsultationRequestDraft


async def stage_details(
    session: AsyncSession, *, request_id: uuid.UUID, requester_id: uuid.UUID, details: str
) -> None:
    """For the API, before it starts the workflow; a retried submit changes nothing."""
    await session.execute(
        insert(ConsultationRequestDraft)
        .values(request_id=request_id, requester_user_id=requester_id, request_details=details)
        .on_conflict_do_nothing(index_elements=["request_id"])
    )


async def take_details(
    session: AsyncSession, *, request_id: uuid.UUID, requester_id: uuid.UUID
) -> str | None:
    """The staged text, removed in the caller's transaction (so taken at most once)."""
    statement = (
        delete(ConsultationRequestDraft)
        .where(
            ConsultationRequestDraft.request_id == request_id,
            ConsultationRequestDraft.requester_user_id == requester_id,
        )
        .returning(ConsultationRequestDraft.request_details)
    )
    details: str | None = (await session.execute(statement)).scalar_one_or_none()
    return details


class StaleDraft(NamedTuple):
    request_id: uuid.UUID
    created_at: datetime
    # The request row exists: its details were stored, this draft is a leftover copy.
    request_stored: bool


async def stale_drafts(
    session: AsyncSession,
    *,
    older_than: datetime,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[StaleDraft]:
    """Drafts staged before ``older_than``, oldest first, from just after ``after``."""
    draft = ConsultationRequestDraft
    stored = exists().where(ConsultationRequest.id == draft.request_id)
    query = (
        select(draft.request_id, draft.created_at, stored.label("request_stored"))
        .where(draft.created_at < older_than)
        .order_by(draft.created_at, draft.request_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(draft.created_at, draft.request_id) > tuple_(*after))
    rows = (await session.execute(query)).all()
    return [StaleDraft(row.request_id, row.created_at, row.request_stored) for row in rows]


async def delete_drafts(
    session: AsyncSession, request_ids: Collection[uuid.UUID], *, older_than: datetime
) -> int:
    """Delete these drafts if still staged before ``older_than``; returns how many went."""
    if not request_ids:
        return 0
    result = await session.execute(
        delete(ConsultationRequestDraft)
        .where(
            ConsultationRequestDraft.request_id.in_(list(request_ids)),
            ConsultationRequestDraft.created_at < older_than,
        )
        .returning(ConsultationRequestDraft.request_id)
    )
    return len(result.all())
