"""The coach's sync schedule: a friendly picker over a cron expression (pure), and the
scheduler jobs built from what is stored.

The picker offers "daily at HH:MM", "every N hours" and "weekly on a day at HH:MM";
anything else is kept as a custom cron. Times are in the coach's zone: each coach's
job evaluates its cron in that zone (a DST change moves nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from cpsync.scheduler import ScheduledJob, valid_cron

FREQUENCIES = ("daily", "hours", "weekly", "custom")
EVERY_HOURS = (1, 2, 3, 4, 6, 8, 12)
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Picker:
    frequency: str = "daily"
    hour: int = 3
    minute: int = 0
    every_hours: int = 6
    weekday: int = 1  # cron numbering: 0 = Sunday
    custom: str = ""

    def to_cron(self) -> str:
        if self.frequency == "custom":
            cron = " ".join(self.custom.split())
            if not cron or len(cron.split()) != 5 or not valid_cron(cron):
                raise ScheduleError("Enter a cron expression with five fields, e.g. 0 3 * * *.")
            return cron
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ScheduleError("Pick a time between 00:00 and 23:59.")
        if self.frequency == "daily":
            return f"{self.minute} {self.hour} * * *"
        if self.frequency == "hours":
            if self.every_hours not in EVERY_HOURS:
                raise ScheduleError("Pick one of the offered intervals.")
            return f"{self.minute} */{self.every_hours} * * *"
        if self.frequency == "weekly":
            if not 0 <= self.weekday <= 6:
                raise ScheduleError("Pick a day of the week.")
            return f"{self.minute} {self.hour} * * {self.weekday}"
        raise ScheduleError("Pick how often to sync.")


_DAILY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* \*$")
_HOURS = re.compile(r"^(\d{1,2}) \*/(\d{1,2}) \* \* \*$")
_WEEKLY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* ([0-6])$")


def picker_of(cron: str) -> Picker:
    """The picker showing a stored cron (custom when it has no friendly form)."""
    if match := _DAILY.match(cron):
        return Picker("daily", hour=int(match[2]), minute=int(match[1]))
    if (match := _HOURS.match(cron)) and int(match[2]) in EVERY_HOURS:
        return Picker("hours", minute=int(match[1]), every_hours=int(match[2]))
    if match := _WEEKLY.match(cron):
        return Picker("weekly", hour=int(match[2]), minute=int(match[1]), weekday=int(match[3]))
    return Picker("custom", custom=cron)


def describe(cron: str, zone: str) -> str:
    picker = picker_of(cron)
    at = f"{picker.hour:02d}:{picker.minute:02d}"
    if picker.frequency == "daily":
        return f"Every day at {at} ({zone})"
    if picker.frequency == "hours":
        return f"Every {picker.every_hours} h at minute {picker.minute} ({zone})"
    if picker.frequency == "weekly":
        return f"Every {WEEKDAYS[picker.weekday]} at {at} ({zone})"
    return f"Cron {cron} ({zone})"


def zone_or_utc(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class ZonedCronJob(ScheduledJob):
    """A cron evaluated in a time zone instead of UTC."""

    zone: str = "UTC"

    def latest_occurrence(self, now: datetime) -> datetime:
        local = now.astimezone(zone_or_utc(self.zone))
        iterator = croniter(self.cron or "0 3 * * *", local + timedelta(microseconds=1))
        occurrence: datetime = iterator.get_prev(datetime)
        return occurrence.astimezone(UTC)

    def next_occurrence(self, now: datetime) -> datetime:
        local = now.astimezone(zone_or_utc(self.zone))
        occurrence: datetime = croniter(self.cron or "0 3 * * *", local).get_next(datetime)
        return occurrence.astimezone(UTC)
