"""Search for bookable times: where a session of a service type fits into free slots."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep, SignedIn
from api.errors import Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_slot_cursor, encode_slot_cursor, keyset_page
from api.schemas.fields import IsoAwareDatetime, StorableText
from api.schemas.search import BookableTimeOut
from api.submission_checks import bookable_service_type
from core.settings import Settings
from db.availability.search import SearchCriteria, search_bookable_times
from db.models import ServiceType

router = APIRouter(prefix="/v1/availability", tags=["availability"])

START_GRANULARITY = timedelta(minutes=5)
"""When the window is moved up to "now plus notice", its start is rounded up to this."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_window(start: datetime, end: datetime, settings: Settings) -> None:
    if end <= start:
        raise Unprocessable("`to` must be after `from`.")
    if end - start > settings.search_max_window:
        raise Unprocessable(
            f"The window spans at most {settings.search_max_window.days} days; narrow it."
        )


def _earliest_start(window_start: datetime, settings: Settings) -> datetime:
    """The window's start, moved up to the first moment a booking may still start.

    Times sooner than the minimum notice cannot be confirmed in time, and past ones
    not at all, so they are never offered.
    """
    earliest = datetime.now(UTC) + settings.minimum_notice
    remainder = (earliest - _EPOCH) % START_GRANULARITY
    if remainder:
        earliest += START_GRANULARITY - remainder
    return max(window_start.astimezone(UTC), earliest)


def _specializations(service_type: ServiceType, requested: str | None) -> tuple[str, ...]:
    # The caller may narrow the search but never widen it past what the service type
    # requires: a consultant lacking it could not be assigned. Profiles store them
    # trimmed and lower-cased, so compare the same way.
    wanted = {s.strip().lower() for s in (service_type.required_specialization, requested) if s}
    return tuple(sorted(s for s in wanted if s))


@router.get(
    "/search",
    summary="Find bookable times",
    description=(
        "For each free slot of a consultant who takes bookings (and has the "
        "specializations), the earliest time a session of the service type fits, with "
        "the whole session inside [`from`, `to`). `from` is moved up to now plus the "
        "minimum notice. Ordered by slot start, then slot id."
    ),
    responses=problems(
        (404, "No such service type"),
        (422, "Invalid parameters, a window too long or reversed, an inactive service type"),
    ),
)
async def search_availability(
    page: PageQuery,
    session: SessionDep,
    settings: SettingsDep,
    _: SignedIn,
    service_type_id: Annotated[
        uuid.UUID, Query(description="The session length is this type's default duration.")
    ],
    window_start: Annotated[
        IsoAwareDatetime, Query(alias="from", description="Window start, with an offset.")
    ],
    window_end: Annotated[
        IsoAwareDatetime, Query(alias="to", description="Window end (exclusive), with an offset.")
    ],
    consultant_id: Annotated[uuid.UUID | None, Query(description="Only this consultant.")] = None,
    specialization: Annotated[
        StorableText | None,
        Query(
            min_length=1,
            max_length=100,
            description="Also require this specialization (the type's own always applies).",
        ),
    ] = None,
) -> Page[BookableTimeOut]:
    _check_window(window_start, window_end, settings)
    service_type = await bookable_service_type(session, service_type_id)
    criteria = SearchCriteria(
        window_start=_earliest_start(window_start, settings),
        window_end=window_end.astimezone(UTC),
        duration=timedelta(minutes=service_type.default_duration_minutes),
        specializations=_specializations(service_type, specialization),
        consultant_id=consultant_id,
        after=decode_slot_cursor(page.cursor) if page.cursor else None,
        limit=page.limit + 1,
    )
    times = await search_bookable_times(session, criteria)
    return keyset_page(
        times,
        page.limit,
        BookableTimeOut.model_validate,
        lambda last: encode_slot_cursor(last.slot_start, last.slot_id),
    )
