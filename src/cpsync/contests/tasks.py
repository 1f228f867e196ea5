"""Queue entry point of contest refresh (thin, idempotent), and its scheduled job.

`contests.refresh(manual)` refreshes every platform, records the run in the `jobs` table
(which /admin lists), then enqueues `calendars.fan_out` with the changed contests, by
name: contests never import calendars. One refresh at a time across processes; a request
while one runs folds into one more run after it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from taskiq import AsyncBroker

from cpsync.contests.recorded import recorded_refresh
from cpsync.contests.service import RUNNING_FLAG, ContestService, RefreshReport
from cpsync.cron import ScheduledJob
from cpsync.locks import run_coalesced
from cpsync.queue import LazyBroker
from cpsync.resources import Resources
from cpsync.settings import Settings

REFRESH = "contests.refresh"
CHANGED = "calendars.fan_out"  # the calendar domain's task, kicked by name
LOCK_SECONDS = 300.0


def contest_service(resources: Resources) -> ContestService:
    return ContestService(
        resources.db,
        resources.http,
        resources.settings,
        resources.clock,
        merge_lock=resources.merge_lock,
    )


async def refresh(resources: Resources, manual: bool = False) -> int:
    """Refresh (or fold into the refresh going now); the runs this call made."""
    service = contest_service(resources)
    ttl = LOCK_SECONDS

    async def work() -> None:
        await resources.cache.set(RUNNING_FLAG, b"1", ttl)
        try:
            reports = await recorded_refresh(resources.db, service, resources.clock, manual=manual)
        finally:
            await resources.cache.delete(RUNNING_FLAG)
        await resources.broker.kick(CHANGED, changed_keys(reports))

    return await run_coalesced(resources.locks, resources.cache, REFRESH, work, ttl)


def changed_keys(reports: list[RefreshReport]) -> list[tuple[str, str]]:
    """(platform, key) of every contest that changed, sorted."""
    return sorted({(report.platform, key) for report in reports for key, _kind in report.changes})


def register(broker: AsyncBroker, resources: Callable[[], Resources]) -> None:
    @broker.task(task_name=REFRESH)
    async def refresh_task(manual: bool = False) -> int:
        return await refresh(resources(), manual)


def scheduled_jobs(broker: LazyBroker, settings: Settings) -> list[ScheduledJob]:
    """The periodic refresh (none when `refresh_interval_minutes` is 0)."""
    if settings.refresh_interval_minutes <= 0:
        return []

    async def fire() -> str:
        return await broker.kick(REFRESH)

    every = timedelta(minutes=settings.refresh_interval_minutes)
    # Job names carry the queue name: deployments sharing a Redis claim occurrences apart.
    return [ScheduledJob(f"{settings.queue_name}:{REFRESH}", fire, every=every)]
