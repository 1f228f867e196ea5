"""Fires periodic jobs exactly once per deployment, however many schedulers run.

Each occurrence of a job has a name (`job:2026-11-22T03:00:00+00:00`); a scheduler fires
an occurrence only if it wins the lock of that name, so two scheduler processes (or a
restarted one) never fire the same occurrence twice and no leader election is needed.
Schedules are read again on every tick, so a cron expression edited in the database
takes effect without a restart. An occurrence missed by more than the grace period
(the scheduler was down) is skipped, not replayed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from cpsync.clock import Clock
from cpsync.locks import Locks, new_owner

log = logging.getLogger(__name__)


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
        iterator = croniter(self.cron, now + timedelta(microseconds=1))
        occurrence: datetime = iterator.get_prev(datetime)
        return occurrence.astimezone(UTC)


def valid_cron(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


JobSource = Callable[[], Awaitable[Sequence[ScheduledJob]]]


class Scheduler:
    def __init__(
        self,
        locks: Locks,
        clock: Clock,
        jobs: JobSource,
        *,
        tick_seconds: float = 5.0,
        grace: timedelta = timedelta(minutes=10),
    ) -> None:
        self._locks = locks
        self._clock = clock
        self._jobs = jobs
        self._tick = tick_seconds
        self._grace = grace
        self._owner = new_owner()

    async def tick(self) -> list[str]:
        """Fire every job whose latest occurrence is due and unclaimed; return what fired."""
        now = self._clock()
        fired = []
        for job in await self._jobs():
            occurrence = job.latest_occurrence(now)
            if now - occurrence > self._grace:
                continue
            claim = f"fire:{job.name}:{occurrence.isoformat()}"
            # Held for long after the grace period, so a late scheduler cannot claim it again.
            if await self._locks.acquire(claim, self._owner, 2 * self._grace.total_seconds()):
                fired.append(claim)
                try:
                    await job.fire()
                except Exception:
                    log.exception("scheduler.fire.failed job=%s", job.name)
        return fired

    async def run_forever(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._tick)
