"""Staged request details: how the free text reaches the request row without ever
passing through a workflow history.

The API stores the details under the request id it chose (``stage_details``),
then starts the workflow with ``details_staged=True``; ``persist_request`` takes
the text (``take_details``) and deletes the draft in the transaction that inserts
the request. A draft whose workflow never started is swept by age.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ConsultationRequestDraft


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


async def sweep_stale_drafts(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete drafts staged before ``older_than``; returns how many went."""
    result = await session.execute(
        delete(ConsultationRequestDraft)
        .where(ConsultationRequestDraft.created_at < older_than)
        .returning(ConsultationRequestDraft.request_id)
    )
    return len(result.all())
