"""A coach's student settings: sync schedule (cron in the database) and reminder policy."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.clock import Clock
from cpsync.students.models import DEFAULT_SYNC_CRON, StudentSettings
from cpsync.students.schedule import Picker, ScheduleError, sync_cron, zone_or_utc


@dataclass(frozen=True, slots=True)
class SettingsInput:
    picker: Picker
    timezone: str
    inactive_days: int
    accepted_only: bool
    repeat_every_days: int | None


def default_settings(coach_id: int, zone: str, clock: Clock) -> StudentSettings:
    return StudentSettings(
        coach_id=coach_id,
        sync_cron=DEFAULT_SYNC_CRON,
        timezone=zone,
        inactive_days=7,
        accepted_only=False,
        repeat_every_days=None,
        updated_at=clock(),
    )


async def load_settings(
    session: AsyncSession, coach_id: int, zone: str, clock: Clock
) -> StudentSettings:
    found = await session.get(StudentSettings, coach_id)
    return found if found is not None else default_settings(coach_id, zone, clock)


async def save_settings(
    session: AsyncSession, coach_id: int, values: SettingsInput, clock: Clock
) -> StudentSettings:
    """Validate and store; raises ScheduleError with a message for the form."""
    cron = sync_cron(values.picker, clock())
    if str(zone_or_utc(values.timezone)) != values.timezone:
        raise ScheduleError("Unknown time zone: use a name like Asia/Kolkata.", "timezone")
    if not 1 <= values.inactive_days <= 365:
        raise ScheduleError("Inactivity is between 1 and 365 days.", "inactive_days")
    if values.repeat_every_days is not None and not 1 <= values.repeat_every_days <= 365:
        raise ScheduleError("Repeats are between 1 and 365 days apart.", "repeat_every_days")
    row = await session.get(StudentSettings, coach_id)
    if row is None:
        row = default_settings(coach_id, values.timezone, clock)
        session.add(row)
    row.sync_cron = cron
    row.timezone = values.timezone
    row.inactive_days = values.inactive_days
    row.accepted_only = values.accepted_only
    row.repeat_every_days = values.repeat_every_days
    row.updated_at = clock()
    return row
