"""Queue entry points of calendar sync and contest refresh (thin, idempotent).

- `calendars.sync_user(user_id, check_remote)`: one user's sync, under their lock.
- `calendars.reconcile_all()`: queue a checking sync (`check_remote=True`) for everyone.
- `contests.refresh()`: refresh the platforms, record the run in the `jobs` table, then
  queue syncs only for the users the changed contests touch.

Each task takes ids, opens what it needs through the process's `TaskResources`, and
calls a service. Running one twice does no harm: syncs converge, refreshes upsert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from taskiq import AsyncBroker

from cpsync.accounts.crypto import load_keyring
from cpsync.cache import Cache, open_cache
from cpsync.calendars.config import calendar_http_client, calendar_options
from cpsync.calendars.notifications import deliver_pending
from cpsync.calendars.plan import EventKey
from cpsync.calendars.service import CalendarService
from cpsync.clock import Clock, utc_now
from cpsync.contests.recorded import recorded_refresh
from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import Locks, open_locks
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.queue import kick
from cpsync.scheduler import ScheduledJob
from cpsync.settings import Settings

log = logging.getLogger(__name__)

SYNC_USER = "calendars.sync_user"
RECONCILE_ALL = "calendars.reconcile_all"
REFRESH_CONTESTS = "contests.refresh"


@dataclass(slots=True)
class TaskResources:
    settings: Settings
    clock: Clock
    db: Database
    cache: Cache
    locks: Locks
    calendars: CalendarService
    contests: ContestService
    broker: AsyncBroker
    mailer: Mailer
    closers: Sequence[Callable[[], Awaitable[object]]] = ()


class ResourcePool:
    """What tasks share in one process: opened on first use, closed at shutdown."""

    def __init__(self, settings: Settings, broker: AsyncBroker, clock: Clock = utc_now) -> None:
        self._settings = settings
        self._broker = broker
        self._clock = clock
        self._resources: TaskResources | None = None
        self._opening = asyncio.Lock()

    async def get(self) -> TaskResources:
        async with self._opening:
            if self._resources is None:
                self._resources = await self._open()
            return self._resources

    async def _open(self) -> TaskResources:
        settings = self._settings
        db = await open_database(settings)
        cache = open_cache(settings.cache_url, settings.queue_name)
        locks = open_locks(settings.cache_url, settings.queue_name)
        calendar_http = calendar_http_client(settings)
        platform_http = HttpClient(settings)
        calendars = CalendarService(
            db,
            calendar_http,
            load_keyring(settings),
            locks,
            cache,
            calendar_options(settings),
            self._clock,
        )
        contests = ContestService(db, platform_http, settings, self._clock)
        closers = [calendar_http.aclose, platform_http.aclose, locks.close, cache.close, db.dispose]
        mailer = mailer_from_url(settings.smtp_url)
        return TaskResources(
            settings,
            self._clock,
            db,
            cache,
            locks,
            calendars,
            contests,
            self._broker,
            mailer,
            closers,
        )

    async def close(self) -> None:
        resources, self._resources = self._resources, None
        for close in resources.closers if resources else []:
            await close()


async def sync_user(resources: TaskResources, user_id: int, check_remote: bool) -> int:
    runs = await resources.calendars.sync_user(user_id, check_remote=check_remote)
    # A run may have found a revoked token: tell the user now, not at the next sweep.
    await deliver_pending(resources.db, resources.mailer, resources.clock)
    return runs


async def reconcile_all(resources: TaskResources) -> int:
    users = await resources.calendars.users_to_reconcile()
    for user_id in users:
        await kick(resources.broker, SYNC_USER, user_id, True)
    return len(users)


async def refresh_contests(resources: TaskResources, manual: bool = False) -> list[int]:
    """Refresh, record the run for /admin, and fan out to the users it concerns."""
    reports = await recorded_refresh(
        resources.db, resources.contests, resources.clock, manual=manual
    )
    return await fan_out(resources, changed_keys(reports))


async def fan_out(resources: TaskResources, changed: list[EventKey]) -> list[int]:
    async def enqueue(user_id: int) -> None:
        await kick(resources.broker, SYNC_USER, user_id, False)

    return await fan_out_with(resources.calendars, enqueue, changed)


async def fan_out_with(
    calendars: CalendarService,
    enqueue: Callable[[int], Awaitable[object]],
    changed: list[EventKey],
) -> list[int]:
    """Queue a sync for exactly the users the changed contests concern."""
    users = await calendars.users_to_sync(changed)
    for user_id in users:
        await enqueue(user_id)
    log.info("calendars.fan_out changed=%d users=%d", len(changed), len(users))
    return users


def changed_keys(reports: list[RefreshReport]) -> list[EventKey]:
    return sorted({(report.platform, key) for report in reports for key, _kind in report.changes})


def register(broker: AsyncBroker, pool: ResourcePool) -> None:
    """Bind the task names on `broker`; each task gets the process's resources."""

    @broker.task(task_name=SYNC_USER)
    async def sync_user_task(user_id: int, check_remote: bool = False) -> int:
        return await sync_user(await pool.get(), user_id, check_remote)

    @broker.task(task_name=RECONCILE_ALL)
    async def reconcile_all_task() -> int:
        return await reconcile_all(await pool.get())

    @broker.task(task_name=REFRESH_CONTESTS)
    async def refresh_contests_task(manual: bool = False) -> list[int]:
        return await refresh_contests(await pool.get(), manual)


def scheduled_jobs(target: AsyncBroker, config: Settings) -> list[ScheduledJob]:
    """The periodic jobs: contest refresh, and the daily full reconciliation."""

    async def refresh() -> None:
        await kick(target, REFRESH_CONTESTS)

    async def reconcile() -> None:
        await kick(target, RECONCILE_ALL)

    # Job names carry the queue name: deployments sharing a Redis claim occurrences apart.
    prefix = config.queue_name
    cron = config.reconcile_cron
    jobs = [ScheduledJob(f"{prefix}:{RECONCILE_ALL}", reconcile, cron=cron)]
    if config.refresh_interval_minutes > 0:
        every = timedelta(minutes=config.refresh_interval_minutes)
        jobs.append(ScheduledJob(f"{prefix}:{REFRESH_CONTESTS}", refresh, every=every))
    return jobs
