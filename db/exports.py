"""Personal data exports: the export row, its parts, and reading them back in order.

The export's workflow appends one part per page of a section (``store_part``, at a
position the workflow numbers), then marks the export ready; the download reads the
parts by position. Storing a part is idempotent (a retried activity writes nothing
twice), and writes nothing once the export is gone (expired or erased).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import ExportStatus, PersonalDataSection
from db.models import PersonalDataExport, PersonalDataExportPart


async def create_export(
    session: AsyncSession, *, subject_id: uuid.UUID, requested_by: uuid.UUID
) -> PersonalDataExport:
    export = PersonalDataExport(subject_id=subject_id, requested_by=requested_by)
    session.add(export)
    await session.flush()
    await session.refresh(export)
    return export


async def get_export(session: AsyncSession, export_id: uuid.UUID) -> PersonalDataExport | None:
    return await session.get(PersonalDataExport, export_id, populate_existing=True)


async def store_part(
    session: AsyncSession,
    export_id: uuid.UUID,
    *,
    position: int,
    section: PersonalDataSection,
    items: list[Any],
) -> None:
    source = select(
        literal(export_id),
        literal(position),
        literal(section.value),
        literal(items, type_=PersonalDataExportPart.items.type),
    ).where(exists().where(PersonalDataExport.id == export_id))
    await session.execute(
        insert(PersonalDataExportPart)
        .from_select(["export_id", "position", "section", "items"], source)
        .on_conflict_do_nothing(index_elements=["export_id", "position"])
    )


async def mark_ready(session: AsyncSession, export_id: uuid.UUID) -> None:
    await session.execute(
        update(PersonalDataExport)
        .where(
            PersonalDataExport.id == export_id,
            PersonalDataExport.status == ExportStatus.PENDING.value,
        )
        .values(status=ExportStatus.READY.value, completed_at=func.now())
    )


async def parts_after(
    session: AsyncSession, export_id: uuid.UUID, *, position: int, limit: int
) -> Sequence[PersonalDataExportPart]:
    """The parts after ``position``, in document order."""
    query = (
        select(PersonalDataExportPart)
        .where(
            PersonalDataExportPart.export_id == export_id,
            PersonalDataExportPart.position > position,
        )
        .order_by(PersonalDataExportPart.position)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def exports_of(session: AsyncSession, subject_id: uuid.UUID) -> list[uuid.UUID]:
    query = select(PersonalDataExport.id).where(PersonalDataExport.subject_id == subject_id)
    return list((await session.scalars(query)).all())


async def delete_exports_of(session: AsyncSession, subject_id: uuid.UUID) -> int:
    """Every export of the person, with its parts."""
    result = await session.execute(
        delete(PersonalDataExport)
        .where(PersonalDataExport.subject_id == subject_id)
        .returning(PersonalDataExport.id)
    )
    return len(result.all())
