"""The coach's sync schedule: a friendly picker over a cron expression (pure), and the
scheduler jobs built from what is stored.

The picker offers "daily at HH:MM", "every N hours" and "weekly on a day at HH:MM";
anything else is kept as a custom cron. Times are in the coach's zone: each coach's
job evaluates its cron in that zone (a DST change moves nothing).

A schedule is accepted only when it runs within a year and no more often than every
15 minutes: one sync of a large roster takes longer than that. Anything more often than
hourly is accepted with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from cpsync.cron import CronError, ScheduledJob, check_cron, previous_run

EVERY_HOURS = (1, 2, 3, 4, 6, 8, 12)
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
SHORTEST_SYNC_GAP = timedelta(minutes=15)
FREQUENT_SYNC_GAP = timedelta(hours=1)
WEEK = timedelta(days=7)
RUNS_EXAMINED = 7 * 24 * 4 + 1  # a week of runs at the shortest allowed gap


class ScheduleError(ValueError):
    """A settings value the form refuses; `field` names the input the message is about."""

    def __init__(self, message: str, field: str = "form") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Picker:
    frequency: str = "daily"
    hour: int = 3
    minute: int = 0
    every_hours: int = 6
    weekday: int = 1  # cron numbering: 0 = Sunday
    custom: str = ""

    def to_cron(self) -> str:
        """The cron the picker stands for; a custom one is only tidied (see `sync_cron`)."""
        if self.frequency == "custom":
            cron = " ".join(self.custom.split())
            if not cron:
                raise ScheduleError("Enter a cron expression, e.g. 0 3 * * *.", "custom")
            return cron
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ScheduleError("Pick a time between 00:00 and 23:59.", "time")
        if self.frequency == "daily":
            return f"{self.minute} {self.hour} * * *"
        if self.frequency == "hours":
            if self.every_hours not in EVERY_HOURS:
                raise ScheduleError("Pick one of the offered intervals.", "every_hours")
            return f"{self.minute} */{self.every_hours} * * *"
        if self.frequency == "weekly":
            if not 0 <= self.weekday <= 6:
                raise ScheduleError("Pick a day of the week.", "weekday")
            return f"{self.minute} {self.hour} * * {self.weekday}"
        raise ScheduleError("Pick how often to sync.", "frequency")


def sync_cron(picker: Picker, now: datetime) -> str:
    """The cron to store for a student sync, or ScheduleError saying why not."""
    try:
        cron = check_cron(picker.to_cron(), now)
    except CronError as error:
        raise ScheduleError(str(error), "custom") from error
    gap = shortest_gap(cron, now)
    if gap < SHORTEST_SYNC_GAP:
        raise ScheduleError(
            "Student syncs can run at most every 15 minutes, since one sync of a large "
            f"roster takes longer; this schedule runs {_every(gap)}.",
            "custom",
        )
    return cron


def schedule_warning(cron: str, now: datetime) -> str | None:
    """What the settings page should tell the coach about a stored schedule, if anything."""
    try:
        check_cron(cron, now)
    except CronError as error:
        return f"{error} No scheduled sync happens until you pick another schedule."
    gap = shortest_gap(cron, now)
    if gap < FREQUENT_SYNC_GAP:
        return (
            f"This schedule syncs {_every(gap)}. Each sync asks Codeforces about every "
            "student, so with a large roster one may still run when the next is due; "
            "hourly or less often is kinder."
        )
    return None


def shortest_gap(cron: str, now: datetime) -> timedelta:
    """The shortest time between two consecutive runs of a checked cron.

    Looks at a week of runs from the first one (bursts repeat at most weekly, or start
    at the first run), and stops once a gap below the sync minimum shows.
    """
    runs = croniter(cron, now)
    first: datetime = runs.get_next(datetime)
    previous, shortest = first, timedelta.max
    for _ in range(RUNS_EXAMINED):
        current: datetime = runs.get_next(datetime)
        shortest = min(shortest, current - previous)
        if shortest < SHORTEST_SYNC_GAP or current - first > WEEK:
            break
        previous = current
    return shortest


def _every(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    if minutes == 1:
        return "every minute"
    return f"as often as every {minutes} minutes"


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
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class ZonedCronJob(ScheduledJob):
    """A cron evaluated in a time zone instead of UTC."""

    zone: str = "UTC"

    def latest_occurrence(self, now: datetime) -> datetime:
        local = now.astimezone(zone_or_utc(self.zone))
        return previous_run(self.cron or "0 3 * * *", local).astimezone(UTC)
