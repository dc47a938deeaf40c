"""Asking for a person's erasure, the same way for an operator's call and the IAM's event.

The erasure is recorded (under the person's pseudonym) before its workflow starts, so
from that moment the person's token answers 410, and nothing new of theirs can begin
while the erasure settles the rest. A start Temporal refuses is retried by asking
again (the operator or the IAM): the record is kept, the workflow starts then.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.container import AppContainer
from api.personal_data_workflows import start_erasure
from core.pseudonyms import pseudonym_for
from core.vocabulary import (
    AuditAction,
    AuditActorKind,
    AuditTarget,
    ErasureRequester,
)
from db import audit, erasure
from db.models import PersonErasure


def pseudonym_of(container: AppContainer, person_id: uuid.UUID) -> uuid.UUID:
    return pseudonym_for(person_id, container.settings.pseudonym_secret.get_secret_value())


async def erase(
    container: AppContainer,
    session: AsyncSession,
    person_id: uuid.UUID,
    *,
    via: ErasureRequester,
    requested_by: uuid.UUID | None,
) -> tuple[PersonErasure, bool]:
    """Record and start the erasure; (its record, whether this call asked first)."""
    pseudonym = pseudonym_of(container, person_id)
    first = await erasure.request_erasure(
        session, pseudonym=pseudonym, subject_id=person_id, via=via, requested_by=requested_by
    )
    if first:
        kind = AuditActorKind.OPERATOR if via is ErasureRequester.OPERATOR else AuditActorKind.IAM
        await audit.record(
            session,
            actor=audit.Actor(kind=kind, user_id=requested_by),
            action=AuditAction.PERSONAL_DATA_ERASURE_REQUESTED,
            target_type=AuditTarget.PERSON,
            target_id=pseudonym,
            changed={},
        )
    await session.commit()
    record = await erasure.erasure_of(session, pseudonym)
    assert record is not None  # just written, or written before
    if record.completed_at is None:
        await start_erasure(
            container.temporal,
            pseudonym=pseudonym,
            task_queue=container.settings.temporal_task_queue,
        )
    return record, first
