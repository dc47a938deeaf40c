"""A person's data: export it as one JSON document (the person themself or an
operator), erase it (an operator; the IAM has its own signed route).

An export is gathered by its own workflow (``PersonalDataExportWorkflow``), so a long
history does not hold an HTTP request open: ``POST`` answers 202 at once, the export
is ``ready`` a moment later, and its document streams from the stored parts. An
erasure is a workflow too (``PersonErasureWorkflow``, see ``api.erasures``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.audit_trail import actor_of
from api.auth import Principal
from api.deps import ContainerDep, OperatorPrincipal, SessionDep, SignedIn
from api.erasures import erase, pseudonym_of
from api.errors import ExportNotReady, Forbidden, NotFound
from api.openapi import problems
from api.personal_data_workflows import start_export
from api.schemas.personal_data import DataExportOut, ErasureOut
from core.vocabulary import (
    AuditAction,
    AuditTarget,
    ErasureRequester,
    ErasureStep,
    ExportStatus,
)
from db import audit, erasure, exports
from db.models import PersonalDataExport, PersonErasure
from workflows.contracts.erasure import erasure_workflow_id

router = APIRouter(prefix="/v1/people/{person_id}", tags=["personal data"])

PARTS_PER_READ = 20
NOT_THEIRS = (403, "Neither this person nor an operator")


def ensure_acts_for(principal: Principal, person_id: uuid.UUID) -> None:
    if principal.is_operator or principal.user_id == person_id:
        return
    raise Forbidden("Only the person themself or an operator may do this.")


def _out(export: PersonalDataExport, container: ContainerDep) -> DataExportOut:
    return DataExportOut(
        id=export.id,
        person_id=export.subject_id,
        status=ExportStatus(export.status),
        requested_at=export.requested_at,
        completed_at=export.completed_at,
        expires_at=export.requested_at + container.settings.retention_exports,
        document_url=f"{router.prefix.format(person_id=export.subject_id)}"
        f"/data-exports/{export.id}/document",
    )


async def _their_export(
    session: SessionDep, person_id: uuid.UUID, export_id: uuid.UUID
) -> PersonalDataExport:
    export = await exports.get_export(session, export_id)
    if export is None or export.subject_id != person_id:
        raise NotFound(f"Person {person_id} has no export {export_id} (it may have expired).")
    return export


@router.post(
    "/data-exports",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Export everything the service holds about a person",
    description=(
        "Requests, drafts, sessions, profile, availability, the events about them and "
        "the audit entries they made or that are about them, as one JSON document. "
        "Gathered by a workflow: poll the export until `ready`, then GET `document_url`."
    ),
    responses=problems(NOT_THEIRS, (503, "Temporal is unreachable; nothing was started")),
)
async def request_export(
    person_id: uuid.UUID,
    session: SessionDep,
    principal: SignedIn,
    container: ContainerDep,
    response: Response,
) -> DataExportOut:
    ensure_acts_for(principal, person_id)
    export = await exports.create_export(
        session, subject_id=person_id, requested_by=principal.user_id
    )
    entry = await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.PERSONAL_DATA_EXPORT_REQUESTED,
        target_type=AuditTarget.PERSON,
        target_id=person_id,
        changed={},
    )
    # Committed before the start: the workflow's activities write into this row.
    await session.commit()
    try:
        await start_export(
            container.temporal,
            export_id=export.id,
            subject_id=person_id,
            task_queue=container.settings.temporal_task_queue,
            page_size=container.settings.export_page_size,
        )
    except Exception:
        # Not started: as if it had never been asked for.
        await session.delete(export)
        await audit.withdraw(session, entry)
        await session.commit()
        raise
    out = _out(export, container)
    response.headers["Location"] = (
        f"{router.prefix.format(person_id=person_id)}/data-exports/{export.id}"
    )
    return out


@router.get(
    "/data-exports/{export_id}",
    summary="Is a person's export ready?",
    responses=problems(NOT_THEIRS, (404, "No such export, or it expired")),
)
async def read_export(
    person_id: uuid.UUID,
    export_id: uuid.UUID,
    session: SessionDep,
    principal: SignedIn,
    container: ContainerDep,
) -> DataExportOut:
    ensure_acts_for(principal, person_id)
    return _out(await _their_export(session, person_id, export_id), container)


@router.get(
    "/data-exports/{export_id}/document",
    summary="Download a person's export: one JSON document",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "The whole export"},
        **problems(NOT_THEIRS, (404, "No such export, or it expired"), (409, "Not ready yet")),
    },
)
async def download_export(
    person_id: uuid.UUID,
    export_id: uuid.UUID,
    session: SessionDep,
    principal: SignedIn,
    container: ContainerDep,
) -> StreamingResponse:
    ensure_acts_for(principal, person_id)
    export = await _their_export(session, person_id, export_id)
    if export.status != ExportStatus.READY.value:
        raise ExportNotReady(f"Export {export_id} is still being prepared; try again shortly.")
    header = {
        "person_id": str(person_id),
        "export_id": str(export.id),
        "requested_at": export.requested_at.isoformat(),
        "completed_at": export.completed_at.isoformat() if export.completed_at else None,
    }
    await session.commit()  # no connection held between the checks and the stream
    return StreamingResponse(
        _document(container.session_factory, export.id, header),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="personal-data-{person_id}.json"'},
    )


async def _document(
    sessions: async_sessionmaker[AsyncSession], export_id: uuid.UUID, header: dict[str, str | None]
) -> AsyncIterator[bytes]:
    """``{...header, "sections": {"<section>": [items...], ...}}``, part by part, so a
    large export is never held in memory whole."""
    yield json.dumps(header)[:-1].encode() + b', "sections": {'
    current: str | None = None
    first_item = True
    position = -1
    while True:
        async with sessions() as session:
            parts = await exports.parts_after(
                session, export_id, position=position, limit=PARTS_PER_READ
            )
        if not parts:
            break
        for part in parts:
            position = part.position
            if part.section != current:
                opening = "" if current is None else "], "
                yield f"{opening}{json.dumps(part.section)}: [".encode()
                current, first_item = part.section, True
            for item in part.items:
                yield (b"" if first_item else b", ") + json.dumps(item).encode()
                first_item = False
    yield b"]}}" if current is not None else b"}}"


# --- erasure ----------------------------------------------------------------------------


def erasure_out(record: PersonErasure) -> ErasureOut:
    return ErasureOut(
        person_pseudonym=record.pseudonym,
        status="completed" if record.completed_at is not None else "in_progress",
        step=ErasureStep(record.step),
        requested_via=ErasureRequester(record.requested_via),
        requested_by=record.requested_by,
        requested_at=record.requested_at,
        completed_at=record.completed_at,
        workflow_id=erasure_workflow_id(record.pseudonym),
    )


@router.post(
    "/erasure",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Erase a person's data (operator)",
    description=(
        "From now on the person's token answers 410. Their open requests and future "
        "sessions are cancelled through their workflows (`account_erased`), requests "
        "offered to them as consultant are declined, then their free text is deleted, "
        "their id is replaced by a stable pseudonym in every row and kept event, and "
        "their workflows are deleted from Temporal. Asking again answers 200 with the "
        "same erasure (and resumes one whose workflow could not start)."
    ),
    responses={
        200: {"description": "Asked before: the same erasure"},
        **problems((503, "Recorded, but Temporal is unreachable: ask again to start it")),
    },
)
async def request_erasure(
    person_id: uuid.UUID,
    session: SessionDep,
    principal: OperatorPrincipal,
    container: ContainerDep,
    response: Response,
) -> ErasureOut:
    record, first = await erase(
        container,
        session,
        person_id,
        via=ErasureRequester.OPERATOR,
        requested_by=principal.user_id,
    )
    if not first:
        response.status_code = status.HTTP_200_OK
    return erasure_out(record)


@router.get(
    "/erasure",
    summary="How far a person's erasure is (operator)",
    responses=problems((404, "This person was never asked to be erased")),
)
async def read_erasure(
    person_id: uuid.UUID,
    session: SessionDep,
    _: OperatorPrincipal,
    container: ContainerDep,
) -> ErasureOut:
    record = await erasure.erasure_of(session, pseudonym_of(container, person_id))
    if record is None:
        raise NotFound(f"Person {person_id} was not asked to be erased.")
    return erasure_out(record)
