"""Refreshes contests on a schedule inside the `cpsync serve` process, and on demand.

Each run is recorded in the `jobs` table. One run at a time: a manual request while a run
is going is declined. (With several server processes each would run its own schedule; the
task queue of a later issue takes this over.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from cpsync.clock import Clock
from cpsync.contests.merge import ChangeKind
from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database
from cpsync.jobs import JobState, finish_job, start_job
from cpsync.platforms.registry import PLATFORMS

log = logging.getLogger(__name__)
JOB_KIND = "contests.refresh"


class RefreshScheduler:
    def __init__(
        self,
        db: Database,
        contests: ContestService,
        clock: Clock,
        interval_minutes: float,
        housekeeping: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._housekeeping = housekeeping
        self._db = db
        self._contests = contests
        self._clock = clock
        self._interval = interval_minutes * 60
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def start(self) -> None:
        if self._interval > 0:
            self._spawn(self._loop(), "loop")

    def trigger(self) -> bool:
        """Start a refresh now in the background; False when one is already running."""
        if self.running:
            return False
        self._spawn(self.run_once(manual=True), "manual")
        return True

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Wait for background runs started by `trigger` (tests, shutdown)."""
        while any(not task.done() for task in self._tasks if task.get_name() == "manual"):
            await asyncio.sleep(0.01)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _loop(self) -> None:
        if await self._contests.stale_platforms(list(PLATFORMS)):
            await self.run_once()
        while True:
            await asyncio.sleep(self._interval)
            await self.run_once()

    async def run_once(self, *, manual: bool = False) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            kind = JOB_KIND + (" (manual)" if manual else "")
            job_id = await start_job(self._db, kind, self._clock())
            try:
                reports = await self._contests.refresh()
            except Exception as exc:
                log.exception("scheduler.refresh.failed")
                await finish_job(self._db, job_id, JobState.FAILED, repr(exc), self._clock())
                return
            state = JobState.SUCCEEDED if all(r.ok for r in reports) else JobState.FAILED
            await finish_job(self._db, job_id, state, summarise(reports), self._clock())
            if self._housekeeping is not None:
                await self._housekeeping()


def summarise(reports: list[RefreshReport]) -> str:
    parts = []
    for report in reports:
        if report.error:
            parts.append(f"{report.platform}: failed ({report.error})")
            continue
        added = report.count(ChangeKind.ADDED) + report.count(ChangeKind.RESTORED)
        changed = report.count(ChangeKind.RESCHEDULED) + report.count(ChangeKind.RENAMED)
        parts.append(
            f"{report.platform}: {added} new, {changed} changed, "
            f"{report.count(ChangeKind.CANCELLED)} cancelled, {report.unchanged} unchanged"
        )
    return "; ".join(parts)
