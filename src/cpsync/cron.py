"""Cron expressions, checked and evaluated, and the scheduled job they time (pure): what
the settings, the scheduler and each domain's jobs share. Errors are written for people."""

from __future__ import annotations

import calendar
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, CroniterError, croniter

# (name, lowest, highest) of the five fields; weekday 7 is Sunday again, as in cron.
CRON_FIELDS = (
    ("Minute", 0, 59),
    ("Hour", 0, 23),
    ("Day of month", 1, 31),
    ("Month", 1, 12),
    ("Day of week", 0, 7),
)
LONGEST_GAP = timedelta(days=366)


class CronError(ValueError):
    """A cron expression that cannot be scheduled; the message is written for people."""


def check_cron(expression: str, now: datetime) -> str:
    """The expression with its spacing normalised, or CronError saying what is wrong.

    Accepted only when it is well formed and runs at least once in the year after `now`.
    """
    cron = " ".join(expression.split())
    fields = cron.split(" ") if cron else []
    if len(fields) != len(CRON_FIELDS):
        raise CronError(
            "A cron expression has five fields (minute hour day month weekday), "
            f"e.g. 0 3 * * *; this one has {len(fields)}."
        )
    for position, field in enumerate(fields):
        if problem := _field_problem(position, field):
            raise CronError(problem)
    if not croniter.is_valid(cron):
        raise CronError("This cron expression is not understood.")
    upcoming = _next_run(cron, now)
    if upcoming is None:
        reason = _impossible_date(cron)
        raise CronError(f"This schedule never runs: {reason}" if reason else _NEVER)
    if upcoming - now > LONGEST_GAP:
        raise CronError(f"{_NEVER} (next on {upcoming:%d %B %Y}).")
    return cron


_NEVER = "This schedule never runs within a year"
_NUMBER = re.compile(r"(?:^|[,-])(\d+)")  # numbers of values and ranges, not of steps


def _field_problem(position: int, field: str) -> str | None:
    probe = ["*"] * len(CRON_FIELDS)
    probe[position] = field
    if croniter.is_valid(" ".join(probe)):
        return None
    name, low, high = CRON_FIELDS[position]
    if any(not low <= int(number) <= high for number in _NUMBER.findall(field)):
        return f"{name} must be {low}-{high}; {field} is out of range."
    return (
        f"{name} {field} is not understood: use numbers, *, ranges (1-5), "
        "lists (1,15) or steps (*/15)."
    )


def _next_run(cron: str, now: datetime) -> datetime | None:
    try:
        upcoming: datetime = croniter(cron, now).get_next(datetime)
    except CroniterBadDateError:
        return None
    return upcoming


def _impossible_date(cron: str) -> str | None:
    """ "February has no 30th." when the days asked for exist in none of the months."""
    _, _, days, months, weekdays = croniter(cron).expanded
    if weekdays != ["*"] or days == ["*"] or not all(isinstance(d, int) for d in days):
        return None
    chosen = list(range(1, 13)) if months == ["*"] else [int(m) for m in months]
    first = min(int(d) for d in days)
    if any(first <= calendar.monthrange(2028, month)[1] for month in chosen):  # a leap year
        return None
    names = [calendar.month_name[month] for month in chosen]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "has" if len(names) == 1 else "have"
    return f"{listed} {verb} no {_ordinal(first)}."


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def previous_run(cron: str, now: datetime) -> datetime:
    """The latest time at or before `now` that `cron` names, in `now`'s zone.

    A cron that cannot be evaluated raises CronError with the reason, e.g. a stored
    `0 3 30 2 *` that was accepted before crons were checked.
    """
    try:
        occurrence: datetime = croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)
    except CroniterError as error:
        try:
            check_cron(cron, now)
        except CronError as reason:
            raise CronError(f"cron {cron}: {reason}") from error
        raise CronError(f"cron {cron}: {error}") from error
    return occurrence


def valid_cron(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    fire: Callable[[], Awaitable[object]]
    every: timedelta | None = None
    cron: str | None = None

    def latest_occurrence(self, now: datetime) -> datetime:
        """The most recent due time at or before `now` (UTC)."""
        if self.every is not None:
            step = self.every.total_seconds()
            return datetime.fromtimestamp(now.timestamp() // step * step, UTC)
        if self.cron is None:
            raise ValueError(f"job {self.name} has neither `every` nor `cron`")
        return previous_run(self.cron, now).astimezone(UTC)
