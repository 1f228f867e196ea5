"""What pages and the API show about contests and platform health, built from rows. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpsync.contests.ics import PLATFORM_LABELS
from cpsync.contests.models import Contest, PlatformHealth
from cpsync.contests.schemas import HealthOut, HealthState


@dataclass(frozen=True, slots=True)
class ContestFilters:
    platforms: list[str]
    days: int | None
    q: str


def filter_contests(
    contests: Iterable[Contest], filters: ContestFilters, now: datetime
) -> list[Contest]:
    needle = filters.q.strip().casefold()
    horizon = now + timedelta(days=filters.days) if filters.days is not None else None
    return [
        contest
        for contest in contests
        if (not filters.platforms or contest.platform in filters.platforms)
        and (horizon is None or contest.start < horizon)
        and (not needle or needle in contest.name.casefold())
    ]


def health_views(
    rows: Mapping[str, PlatformHealth],
    platforms: Sequence[str],
    now: datetime,
    stale_after: timedelta,
) -> list[HealthOut]:
    views = []
    for name in platforms:
        row = rows.get(name)
        views.append(
            HealthOut(
                platform=name,
                label=PLATFORM_LABELS.get(name, name),
                state=_state(row, now, stale_after),
                last_success_at=row.last_success_at if row else None,
                last_error=row.last_error if row and row.consecutive_failures else None,
            )
        )
    return views


def _state(row: PlatformHealth | None, now: datetime, stale_after: timedelta) -> HealthState:
    if row is None or row.last_attempt_at is None:
        return "never"
    if row.consecutive_failures > 0:
        return "failing"
    if row.last_success_at is None or now - row.last_success_at > stale_after:
        return "stale"
    return "ok"
