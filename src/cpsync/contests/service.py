"""Contest use cases: refresh from the platforms, read what is upcoming, report health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.contests.merge import ChangeKind, MergePlan, plan_merge
from cpsync.contests.models import Contest, PlatformHealth
from cpsync.contests.repository import ContestRepository
from cpsync.contests.schemas import HealthOut
from cpsync.contests.views import health_views
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.platforms.fetch import FetchOutcome, fetch_platform
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings


@dataclass(slots=True)
class RefreshReport:
    platform: str
    counts: dict[ChangeKind, int] = field(default_factory=dict)
    unchanged: int = 0
    skipped: int = 0
    error: str | None = None
    changes: list[tuple[str, ChangeKind]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def count(self, kind: ChangeKind) -> int:
        return self.counts.get(kind, 0)


class ContestService:
    def __init__(
        self,
        db: Database,
        http: HttpClient,
        settings: Settings,
        clock: Clock,
        *,
        merge_lock: asyncio.Lock | None = None,
    ) -> None:
        self._db = db
        self._http = http
        self._settings = settings
        self._clock = clock
        # SQLite has one writer; merging platforms one at a time costs nothing elsewhere.
        # Pass the process's lock (`Resources.merge_lock`) so every service shares it.
        self._merge_lock = merge_lock or asyncio.Lock()

    async def refresh(
        self,
        platforms: Sequence[str] = tuple(PLATFORMS),
        on_report: Callable[[RefreshReport], None] | None = None,
    ) -> list[RefreshReport]:
        """Fetch the platforms concurrently and merge each as soon as it answers."""
        now = self._clock()

        async def one(name: str) -> RefreshReport:
            outcome = await fetch_platform(
                self._http,
                PLATFORMS[name],
                self._settings.base_url(name),
                now,
                max_contests=self._settings.max_contests_per_platform,
                max_bytes=self._settings.platform_max_response_bytes,
            )
            report = await self._store(outcome)
            if on_report is not None:
                on_report(report)
            return report

        reports = await asyncio.gather(*(one(name) for name in platforms))
        await self.prune()
        return list(reports)

    async def _store(self, outcome: FetchOutcome) -> RefreshReport:
        report = RefreshReport(outcome.platform, skipped=len(outcome.skipped), error=outcome.error)
        async with self._merge_lock, self._db.session() as session, session.begin():
            repository = ContestRepository(session)
            health = await repository.health_row(outcome.platform)
            _record_health(health, outcome)
            if not outcome.ok:
                return report
            stored = await repository.stored_for_merge(outcome.platform)
            grace = timedelta(minutes=self._settings.cancel_grace_minutes)
            plan = plan_merge(
                stored, outcome.contests, outcome.fetched_at, grace, detect_missing=outcome.complete
            )
            await repository.apply_merge(outcome.platform, plan, outcome.fetched_at)
            _fill_counts(report, plan)
        return report

    async def upcoming(
        self,
        platforms: Sequence[str] | None = None,
        within: timedelta | None = None,
        include_cancelled: bool = False,
    ) -> list[Contest]:
        now = self._clock()
        async with self._db.session() as session:
            return await ContestRepository(session).not_ended(
                now,
                platforms=platforms,
                starts_before=now + within if within is not None else None,
                include_cancelled=include_cancelled,
            )

    async def stale_platforms(self, platforms: Sequence[str]) -> list[str]:
        """Platforms not tried within the staleness window."""
        cutoff = self._clock() - timedelta(minutes=self._settings.staleness_minutes)
        health = await self.health(platforms)
        return [
            name
            for name in platforms
            if (row := health.get(name)) is None
            or row.last_attempt_at is None
            or row.last_attempt_at < cutoff
        ]

    async def health(
        self, platforms: Sequence[str] = tuple(PLATFORMS)
    ) -> dict[str, PlatformHealth]:
        async with self._db.session() as session:
            return await ContestRepository(session).health(platforms)

    async def prune(self) -> int:
        """Forget contests that ended longer ago than the retention period."""
        cutoff = self._clock() - timedelta(days=self._settings.retention_days)
        async with self._db.session() as session, session.begin():
            return await ContestRepository(session).prune_ended_before(cutoff)


def _record_health(health: PlatformHealth, outcome: FetchOutcome) -> None:
    health.last_attempt_at = outcome.fetched_at
    if outcome.ok:
        health.last_success_at = outcome.fetched_at
        health.consecutive_failures = 0
        health.contests_seen = len(outcome.contests)
    else:
        health.last_failure_at = outcome.fetched_at
        health.last_error = outcome.error
        health.consecutive_failures += 1
    health.items_skipped = len(outcome.skipped)
    health.last_skip_reason = outcome.skipped[0] if outcome.skipped else None


def _fill_counts(report: RefreshReport, plan: MergePlan) -> None:
    report.counts = {kind: plan.count(kind) for kind in ChangeKind}
    report.unchanged = plan.unchanged
    report.changes = plan.changes


async def platform_health(
    session: AsyncSession, settings: Settings, now: datetime
) -> list[HealthOut]:
    """Each platform's fetch health as pages and the API show it, in registry order."""
    rows = await ContestRepository(session).health(list(PLATFORMS))
    stale_after = timedelta(
        minutes=max(settings.staleness_minutes, 2 * settings.refresh_interval_minutes)
    )
    return health_views(rows, list(PLATFORMS), now, stale_after)


# Set by the refresh task while it runs, in the shared cache, so every process sees it.
RUNNING_FLAG = "running:contests.refresh"


async def refresh_running(cache: Cache) -> bool:
    """Whether a contest refresh is going on now, in any process."""
    return await cache.get(RUNNING_FLAG) is not None
