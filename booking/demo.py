"""Demo identities and a small catalog for ``booking dev --demo``.

The user ids are fixed so the tokens ``booking dev`` prints (and ``booking token``
mints by default) match the seeded consultants across runs. Seeding is idempotent:
existing service types and profiles are kept, and availability that would overlap
an existing slot (including one already carved by a booking) is skipped by the
no-overlap constraint itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking.tokens import Role
from db.models import AvailabilitySlot, ConsultantProfile, ServiceType

DEMO_LEARNER_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
DEMO_OPERATOR_ID = uuid.UUID("99999999-9999-4999-8999-999999999999")


@dataclass(frozen=True)
class DemoConsultant:
    user_id: uuid.UUID
    display_name: str
    bio: str
    specializations: tuple[str, ...]
    time_zone: str


DEMO_CONSULTANTS = (
    DemoConsultant(
        uuid.UUID("22222222-2222-4222-8222-000000000001"),
        "Maria Keller",
        "Career coach for software engineers moving into leadership.",
        ("career", "software"),
        "Europe/Berlin",
    ),
    DemoConsultant(
        uuid.UUID("22222222-2222-4222-8222-000000000002"),
        "James Okafor",
        "Data engineer; reviews projects and course plans.",
        ("software", "data"),
        "America/New_York",
    ),
    DemoConsultant(
        uuid.UUID("22222222-2222-4222-8222-000000000003"),
        "Mei Tanaka",
        "Study and language coach.",
        ("career", "language"),
        "Asia/Tokyo",
    ),
)
DEMO_CONSULTANT_ID = DEMO_CONSULTANTS[0].user_id

DEMO_USERS: dict[Role, uuid.UUID] = {
    Role.LEARNER: DEMO_LEARNER_ID,
    Role.CONSULTANT: DEMO_CONSULTANT_ID,
    Role.OPERATOR: DEMO_OPERATOR_ID,
}
"""The demo user each role's token is minted for."""

# (name, description, minutes, required specialization)
DEMO_SERVICE_TYPES = (
    ("Career guidance", "Plan the next step of your career.", 30, "career"),
    ("Technical mentoring", "Pair on code, architecture or a tricky bug.", 60, "software"),
    ("Data project review", "Feedback on a data or analytics project.", 45, "data"),
    ("Study planning", "Choose courses and build a study plan.", 30, None),
)

# Local working hours of every demo consultant, Monday to Friday.
WORKING_HOURS = ((time(9), time(12)), (time(13), time(17)))
AVAILABILITY_DAYS = 7


@dataclass(frozen=True)
class DemoSummary:
    service_types: int
    consultants: int
    slots: int


def demo_slots(consultant: DemoConsultant, today: date) -> list[tuple[datetime, datetime]]:
    """Working-hour blocks from tomorrow for a week, in UTC, weekends skipped."""
    zone = ZoneInfo(consultant.time_zone)
    blocks: list[tuple[datetime, datetime]] = []
    for offset in range(1, AVAILABILITY_DAYS + 1):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for start, end in WORKING_HOURS:
            blocks.append(
                (
                    datetime.combine(day, start, zone).astimezone(UTC),
                    datetime.combine(day, end, zone).astimezone(UTC),
                )
            )
    return blocks


async def seed_demo(
    session_factory: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> DemoSummary:
    """Insert what is missing of the demo catalog; returns how many rows were added."""
    now = now or datetime.now(UTC)
    async with session_factory() as session, session.begin():
        service_types = await session.execute(
            insert(ServiceType)
            .values(
                [
                    {
                        "name": name,
                        "description": description,
                        "default_duration_minutes": minutes,
                        "required_specialization": specialization,
                    }
                    for name, description, minutes, specialization in DEMO_SERVICE_TYPES
                ]
            )
            .on_conflict_do_nothing(index_elements=[ServiceType.name])
            .returning(ServiceType.id)
        )
        consultants = await session.execute(
            insert(ConsultantProfile)
            .values(
                [
                    {
                        "consultant_user_id": consultant.user_id,
                        "display_name": consultant.display_name,
                        "bio": consultant.bio,
                        "specializations": list(consultant.specializations),
                        "time_zone": consultant.time_zone,
                    }
                    for consultant in DEMO_CONSULTANTS
                ]
            )
            .on_conflict_do_nothing(index_elements=[ConsultantProfile.consultant_user_id])
            .returning(ConsultantProfile.consultant_user_id)
        )
        # No conflict target: the exclusion constraint is an arbiter too, so a block
        # overlapping any existing slot of the consultant is skipped, not an error.
        slots = await session.execute(
            insert(AvailabilitySlot)
            .values(
                [
                    {"consultant_user_id": consultant.user_id, "start_time": start, "end_time": end}
                    for consultant in DEMO_CONSULTANTS
                    for start, end in demo_slots(
                        consultant, now.astimezone(ZoneInfo(consultant.time_zone)).date()
                    )
                ]
            )
            .on_conflict_do_nothing()
            .returning(AvailabilitySlot.id)
        )
        return DemoSummary(
            service_types=len(service_types.all()),
            consultants=len(consultants.all()),
            slots=len(slots.all()),
        )
