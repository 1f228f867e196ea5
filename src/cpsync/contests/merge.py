"""Plan how a fresh fetch changes the stored contests of one platform. Pure.

Rules:
- A contest is identified by `(platform, key)`; two contests at the same second are two.
- A changed name, url, start, end or duration updates the row and bumps its revision.
- A not-yet-started contest missing from a successful fetch is marked missing, and
  becomes cancelled once it has been missing for the grace period.
- A cancelled contest that reappears is scheduled again (and its revision bumped,
  so calendars hear about it). Status changes bump the revision too.
- Only call this for a successful, non-empty fetch: anything else changes nothing.
  Absence is only evidence when the fetch was complete (`detect_missing`): a fetch
  that skipped malformed items may have skipped the very contest that looks missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cpsync.contests.models import ContestStatus
from cpsync.platforms.base import ParsedContest


class ChangeKind(StrEnum):
    ADDED = "added"
    RESCHEDULED = "rescheduled"
    RENAMED = "renamed"
    CANCELLED = "cancelled"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class StoredContest:
    id: int
    key: str
    name: str
    url: str
    start: datetime
    end: datetime
    duration_seconds: int
    status: str
    revision: int
    missing_since: datetime | None


@dataclass(frozen=True, slots=True)
class ContestUpdate:
    contest_id: int
    key: str
    values: dict[str, Any]
    change: ChangeKind | None


@dataclass(slots=True)
class MergePlan:
    inserts: list[ParsedContest] = field(default_factory=list)
    updates: list[ContestUpdate] = field(default_factory=list)
    seen_ids: list[int] = field(default_factory=list)

    def count(self, kind: ChangeKind) -> int:
        if kind is ChangeKind.ADDED:
            return len(self.inserts)
        return sum(1 for update in self.updates if update.change is kind)

    @property
    def unchanged(self) -> int:
        changed = {u.contest_id for u in self.updates if u.change is not None}
        return sum(1 for contest_id in self.seen_ids if contest_id not in changed)

    @property
    def changes(self) -> list[tuple[str, ChangeKind]]:
        """Every key whose calendar entry must change, with why."""
        added = [(contest.key, ChangeKind.ADDED) for contest in self.inserts]
        return added + [(u.key, u.change) for u in self.updates if u.change is not None]


def plan_merge(
    stored: Sequence[StoredContest],
    fetched: Sequence[ParsedContest],
    now: datetime,
    grace: timedelta,
    *,
    detect_missing: bool = True,
) -> MergePlan:
    plan = MergePlan()
    by_key = {contest.key: contest for contest in stored}
    for contest in fetched:
        old = by_key.get(contest.key)
        if old is None:
            plan.inserts.append(contest)
            continue
        plan.seen_ids.append(old.id)
        update = _update_seen(old, contest)
        if update is not None:
            plan.updates.append(update)
    if not detect_missing or not fetched:
        return plan
    fetched_keys = {contest.key for contest in fetched}
    for old in stored:
        if old.key not in fetched_keys:
            update = _update_missing(old, now, grace)
            if update is not None:
                plan.updates.append(update)
    return plan


def _update_seen(old: StoredContest, new: ParsedContest) -> ContestUpdate | None:
    values: dict[str, Any] = {}
    change: ChangeKind | None = None
    if (old.name, old.url) != (new.name, new.url):
        values.update(name=new.name, url=new.url)
        change = ChangeKind.RENAMED
    if (old.start, old.end, old.duration_seconds) != (new.start, new.end, new.duration_seconds):
        values.update(start=new.start, end=new.end, duration_seconds=new.duration_seconds)
        change = ChangeKind.RESCHEDULED
    if old.status == ContestStatus.CANCELLED:
        values["status"] = ContestStatus.SCHEDULED
        change = ChangeKind.RESTORED
    if change is not None:
        values["revision"] = old.revision + 1
    if old.missing_since is not None:
        values["missing_since"] = None
    if not values:
        return None
    return ContestUpdate(old.id, old.key, values, change)


def _update_missing(old: StoredContest, now: datetime, grace: timedelta) -> ContestUpdate | None:
    if old.status != ContestStatus.SCHEDULED or old.start <= now:
        return None  # already cancelled, or running/finished: its absence means nothing
    missing_since = old.missing_since or now
    if now - missing_since >= grace:
        values: dict[str, Any] = {
            "status": ContestStatus.CANCELLED,
            "revision": old.revision + 1,
            "missing_since": missing_since,
        }
        return ContestUpdate(old.id, old.key, values, ChangeKind.CANCELLED)
    if old.missing_since is None:
        return ContestUpdate(old.id, old.key, {"missing_since": now}, None)
    return None
