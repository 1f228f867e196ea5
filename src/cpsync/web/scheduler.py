"""The admin's "refresh contests now": one run at a time, recorded in the `jobs` table.

Periodic refreshes are queue jobs fired by `cpsync.scheduler` (see `cpsync.calendars.tasks`);
this runs a refresh in the server process on demand, then hands the reports to
`on_refreshed` (the calendar fan-out), so calendars hear about the changes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from cpsync.clock import Clock
from cpsync.contests.recorded import recorded_refresh
from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database

log = logging.getLogger(__name__)

RefreshedHook = Callable[[list[RefreshReport]], Awaitable[object]]


class ManualRefresh:
    def __init__(self, db: Database, contests: ContestService, clock: Clock) -> None:
        self._db = db
        self._contests = contests
        self._clock = clock
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_refreshed: RefreshedHook | None = None

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def trigger(self) -> bool:
        """Start a refresh now in the background; False when one is already running."""
        if self.running:
            return False
        task = asyncio.create_task(self.run_once(manual=True), name="manual-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Wait for background runs started by `trigger` (tests, shutdown)."""
        while any(not task.done() for task in self._tasks):
            await asyncio.sleep(0.01)

    async def run_once(self, *, manual: bool = False) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            try:
                reports = await recorded_refresh(
                    self._db, self._contests, self._clock, manual=manual
                )
            except Exception:
                log.exception("scheduler.refresh.failed")
                return
            if self.on_refreshed is not None:
                await self.on_refreshed(reports)
