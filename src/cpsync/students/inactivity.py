"""Whether to remind an inactive student now (pure).

A student is inactive once N days have passed since their last submission (or last
accepted one, when the coach asks for that), however recently the coach added them: a
student tracked today who last submitted ten days ago is ten days inactive. Only a
student with no (counted) submission at all is measured from when tracking began.
One inactive stretch is a *streak*; it
gets one reminder, plus one every M days when repeats are on.

A reminder belongs to the current streak only if it was sent once the streak was
already due (at or after last activity + N days). Keying on that, rather than on "any
reminder after the last activity", keeps a late-synced old submission from making an
early reminder look like this streak's one.

Sending exactly once also needs the caller to record the reminder atomically with the
decision (one sync at a time per student); this module only decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Activity:
    at: datetime
    accepted: bool


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    inactive_days: int = 7
    accepted_only: bool = False
    repeat_every_days: int | None = None

    def __post_init__(self) -> None:
        if self.inactive_days < 1:
            raise ValueError("inactivity is counted in whole days, at least one")
        if self.repeat_every_days is not None and self.repeat_every_days < 1:
            raise ValueError("repeats are at least a day apart")


@dataclass(frozen=True, slots=True)
class ReminderDecision:
    send: bool
    inactive_since: datetime | None  # the start of the current streak, if inactive
    reason: str


def reminder_decision(
    activities: Iterable[Activity],
    *,
    now: datetime,
    policy: ReminderPolicy,
    last_reminder_at: datetime | None,
    tracked_since: datetime | None = None,
) -> ReminderDecision:
    """Decide for one student. `tracked_since` stands in only when nothing counts."""
    counted = [a.at for a in activities if a.accepted or not policy.accepted_only]
    last_activity = max(counted, default=tracked_since)
    if last_activity is None:
        return ReminderDecision(False, None, "nothing to measure inactivity from")
    due_at = last_activity + timedelta(days=policy.inactive_days)
    if now < due_at:
        return ReminderDecision(False, None, "active")
    if last_reminder_at is None or last_reminder_at < due_at:
        return ReminderDecision(True, last_activity, "first reminder of this streak")
    if policy.repeat_every_days is None:
        return ReminderDecision(False, last_activity, "already reminded in this streak")
    if now - last_reminder_at >= timedelta(days=policy.repeat_every_days):
        return ReminderDecision(True, last_activity, "repeat reminder")
    return ReminderDecision(False, last_activity, "repeat not yet due")
