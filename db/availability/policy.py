"""The scheduling policy a booking is made under: the service type's (buffers, notice,
horizon, cutoffs), combined with the consultant's (buffers, caps).

Each field of a service type is optional; null means the service-wide behaviour: no
buffer, no horizon, and the notice and cutoffs of the settings. A consultant's buffer
combines with the type's on each side, the larger winning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.availability.caps import NO_CAPS, Caps
from db.availability.offer import StartRules
from db.models import ConsultantProfile, ConsultantServiceLimit, ConsultationRequest, ServiceType

NO_TIME = timedelta(0)


class ServiceTypePolicyColumns(Protocol):
    """A service type's policy columns (the row, or its API body)."""

    @property
    def buffer_before_minutes(self) -> int | None: ...
    @property
    def buffer_after_minutes(self) -> int | None: ...
    @property
    def minimum_notice_minutes(self) -> int | None: ...
    @property
    def booking_horizon_days(self) -> int | None: ...
    @property
    def cancel_cutoff_minutes(self) -> int | None: ...
    @property
    def reschedule_cutoff_minutes(self) -> int | None: ...


def minutes(value: int | None) -> timedelta:
    """A policy column in minutes; null is none."""
    return NO_TIME if value is None else timedelta(minutes=value)


@dataclass(frozen=True, slots=True)
class ServicePolicy:
    """A service type's policy with the service-wide defaults filled in."""

    buffer_before: timedelta = NO_TIME
    buffer_after: timedelta = NO_TIME
    minimum_notice: timedelta = NO_TIME
    horizon: timedelta | None = None
    cancel_cutoff: timedelta = NO_TIME
    reschedule_cutoff: timedelta = NO_TIME

    @classmethod
    def of(
        cls,
        columns: ServiceTypePolicyColumns,
        *,
        minimum_notice: timedelta,
        cancel_cutoff: timedelta,
    ) -> ServicePolicy:
        """``minimum_notice``/``cancel_cutoff``: the settings' (the reschedule cutoff
        falls back to the type's cancel cutoff, then to the setting)."""
        cancel = (
            cancel_cutoff
            if columns.cancel_cutoff_minutes is None
            else minutes(columns.cancel_cutoff_minutes)
        )
        return cls(
            buffer_before=minutes(columns.buffer_before_minutes),
            buffer_after=minutes(columns.buffer_after_minutes),
            minimum_notice=(
                minimum_notice
                if columns.minimum_notice_minutes is None
                else minutes(columns.minimum_notice_minutes)
            ),
            horizon=(
                None
                if columns.booking_horizon_days is None
                else timedelta(days=columns.booking_horizon_days)
            ),
            cancel_cutoff=cancel,
            reschedule_cutoff=(
                cancel
                if columns.reschedule_cutoff_minutes is None
                else minutes(columns.reschedule_cutoff_minutes)
            ),
        )

    def starts_by(self, now: datetime) -> datetime | None:
        """The latest start the horizon allows at ``now``."""
        return None if self.horizon is None else now + self.horizon

    def rules(self, rules: StartRules, *, now: datetime) -> StartRules:
        """``rules`` with this type's buffers and horizon."""
        starts_by = self.starts_by(now)
        if starts_by is not None and rules.starts_by is not None:
            starts_by = min(starts_by, rules.starts_by)
        return replace(
            rules,
            buffer_before=max(rules.buffer_before, self.buffer_before),
            buffer_after=max(rules.buffer_after, self.buffer_after),
            starts_by=starts_by if starts_by is not None else rules.starts_by,
        )


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """What a hold of one consultant's time for one request must respect."""

    service_type_id: uuid.UUID
    service: ServicePolicy
    consultant_buffer_before: timedelta = NO_TIME
    consultant_buffer_after: timedelta = NO_TIME
    caps: Caps = NO_CAPS

    def rules(self, rules: StartRules, *, now: datetime) -> StartRules:
        return self.service.rules(rules, now=now).with_buffers(
            self.consultant_buffer_before, self.consultant_buffer_after
        )


async def hold_policy(
    session: AsyncSession, *, request_id: uuid.UUID, consultant_id: uuid.UUID
) -> HoldPolicy | None:
    """The policy of the request's service type and the consultant (None: the request
    or the consultant is not stored, and the hold fails anyway)."""
    request, service, profile, limit = (
        ConsultationRequest,
        ServiceType,
        ConsultantProfile,
        ConsultantServiceLimit,
    )
    row = (
        await session.execute(
            select(
                service,
                profile.buffer_before_minutes,
                profile.buffer_after_minutes,
                profile.max_sessions_per_day,
                profile.max_sessions_per_week,
                limit.max_sessions_per_day,
                limit.max_sessions_per_week,
            )
            .select_from(request)
            .join(service, service.id == request.consultation_service_type_id)
            .join(profile, profile.consultant_user_id == consultant_id)
            .outerjoin(
                limit,
                and_(
                    limit.consultant_user_id == consultant_id,
                    limit.consultation_service_type_id == service.id,
                ),
            )
            .where(request.id == request_id)
        )
    ).one_or_none()
    if row is None:
        return None
    service_type: ServiceType = row[0]
    return HoldPolicy(
        service_type_id=service_type.id,
        # Notice and cutoffs are the workflow's (copied at submission); a hold needs
        # the buffers and the horizon.
        service=ServicePolicy.of(service_type, minimum_notice=NO_TIME, cancel_cutoff=NO_TIME),
        consultant_buffer_before=minutes(row[1]),
        consultant_buffer_after=minutes(row[2]),
        caps=Caps(*row[3:]),
    )
