"""Queue entry points of calendar sync (thin, idempotent), and its scheduled job.

- `calendars.sync_user(user_id, check_remote)`: one user's sync, under their lock.
- `calendars.reconcile_all()`: queue a checking sync (`check_remote=True`) for everyone.
- `calendars.fan_out(changed)`: after a contest refresh (which names the changed
  contests), queue syncs only for the users they concern.
- `calendars.requeue_stale()`, every minute: the database records what was asked, the
  broker may lose it (a Redis without persistence restarted in an outage, a worker
  stopped mid-run); a sync still queued or running after `queue_redeliver_seconds`,
  with no live run holding the user's lock, is queued again.

Each task takes ids, builds its service from the process's `Resources`, and calls it.
Running one twice does no harm: syncs converge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from taskiq import AsyncBroker

from cpsync.calendars.config import calendar_service
from cpsync.calendars.notifications import deliver_pending
from cpsync.calendars.plan import EventKey
from cpsync.cron import ScheduledJob
from cpsync.queue import LazyBroker
from cpsync.resources import Resources
from cpsync.settings import Settings

log = logging.getLogger(__name__)

SYNC_USER = "calendars.sync_user"
RECONCILE_ALL = "calendars.reconcile_all"
FAN_OUT = "calendars.fan_out"
REQUEUE_STALE = "calendars.requeue_stale"


async def sync_user(resources: Resources, user_id: int, check_remote: bool) -> int:
    runs = await calendar_service(resources).sync_user(user_id, check_remote=check_remote)
    # A run may have found a revoked token: tell the user now, not at the next sweep.
    await deliver_pending(resources.db, resources.mailer, resources.clock)
    return runs


async def reconcile_all(resources: Resources) -> int:
    users = await calendar_service(resources).users_to_reconcile()
    for user_id in users:
        await resources.broker.kick(SYNC_USER, user_id, True)
    return len(users)


async def fan_out(resources: Resources, changed: Sequence[Sequence[str]]) -> list[int]:
    """Queue a sync for exactly the users the changed contests concern."""
    keys: list[EventKey] = [(platform, key) for platform, key in changed]
    users = await calendar_service(resources).users_to_sync(keys)
    for user_id in users:
        await resources.broker.kick(SYNC_USER, user_id, False)
    log.info("calendars.fan_out changed=%d users=%d", len(keys), len(users))
    return users


async def requeue_stale(resources: Resources) -> list[int]:
    """Queue again the syncs whose task was lost (the run coalesces per user, so one
    that was only slow to start costs nothing)."""
    stale_after = timedelta(seconds=resources.settings.queue_redeliver_seconds)
    users = await calendar_service(resources).stale_syncs(stale_after)
    for user_id in users:
        await resources.broker.kick(SYNC_USER, user_id, False)
    if users:
        log.warning("calendars.requeue_stale users=%s", users)
    return users


def register(broker: AsyncBroker, resources: Callable[[], Resources]) -> None:
    """Bind the task names on `broker`; each task runs on the process's resources."""

    @broker.task(task_name=SYNC_USER)
    async def sync_user_task(user_id: int, check_remote: bool = False) -> int:
        return await sync_user(resources(), user_id, check_remote)

    @broker.task(task_name=RECONCILE_ALL)
    async def reconcile_all_task() -> int:
        return await reconcile_all(resources())

    @broker.task(task_name=FAN_OUT)
    async def fan_out_task(changed: list[list[str]]) -> list[int]:
        return await fan_out(resources(), changed)

    @broker.task(task_name=REQUEUE_STALE)
    async def requeue_stale_task() -> list[int]:
        return await requeue_stale(resources())


def scheduled_jobs(broker: LazyBroker, settings: Settings) -> list[ScheduledJob]:
    """The daily full reconciliation, and the requeue of lost syncs every minute."""

    async def reconcile() -> str:
        return await broker.kick(RECONCILE_ALL)

    async def requeue() -> str:
        return await broker.kick(REQUEUE_STALE)

    # Job names carry the queue name: deployments sharing a Redis claim occurrences apart.
    prefix = settings.queue_name
    return [
        ScheduledJob(f"{prefix}:{RECONCILE_ALL}", reconcile, cron=settings.reconcile_cron),
        ScheduledJob(f"{prefix}:{REQUEUE_STALE}", requeue, every=timedelta(minutes=1)),
    ]
