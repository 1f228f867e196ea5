"""What the web app needs for calendar sync, opened inside the app's lifespan.

`install_calendars(app, settings)` is the one call the app factory makes: it adds the
routes and wraps the existing lifespan so the calendar service, its HTTP client, the
locks and the broker are opened after the app context and closed before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from taskiq import AsyncBroker, InMemoryBroker

from cpsync.calendars import tasks as calendar_tasks
from cpsync.calendars.config import calendar_http_client, calendar_options
from cpsync.calendars.service import CalendarService
from cpsync.clock import Clock
from cpsync.contests.service import RefreshReport
from cpsync.errors import CpsyncError
from cpsync.locks import open_locks
from cpsync.queue import kick, make_broker
from cpsync.scheduler import ScheduledJob, Scheduler, record_faults
from cpsync.settings import Settings


class QueueUnavailableError(CpsyncError):
    status_code = 503


class LazyBroker:
    """Connects on first use: the site stays up (and /readyz says why) without a broker."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self._started = False
        self._starting = asyncio.Lock()

    async def ensure_started(self) -> None:
        async with self._starting:
            if not self._started:
                try:
                    await self.broker.startup()
                except Exception as exc:  # connection refused, auth, DNS: all mean "not now"
                    message = "The task queue is unavailable; try again later."
                    raise QueueUnavailableError(message) from exc
                self._started = True

    async def kick(self, task_name: str, *args: Any) -> None:
        await self.ensure_started()
        await kick(self.broker, task_name, *args)

    async def shutdown(self) -> None:
        if self._started:
            await self.broker.shutdown()


@dataclass(slots=True)
class CalendarWeb:
    service: CalendarService
    broker: LazyBroker
    closers: Sequence[Callable[[], Awaitable[object]]] = ()
    pool: calendar_tasks.ResourcePool | None = None  # embedded mode: where tasks run

    async def queue_sync(self, user_id: int, *, check_remote: bool = False) -> None:
        await self.broker.kick(calendar_tasks.SYNC_USER, user_id, check_remote)

    async def close(self) -> None:
        for close in self.closers:
            await close()


async def open_calendar_web(context: Any, settings: Settings) -> CalendarWeb:
    """Built on the app's context (database, cache, keys, clock)."""
    http = calendar_http_client(settings)
    locks = open_locks(settings.cache_url, settings.queue_name)
    service = CalendarService(
        context.db,
        http,
        context.keyring,
        locks,
        context.cache,
        calendar_options(settings),
        context.clock,
    )
    broker = make_broker(settings)
    closers: list[Callable[[], Awaitable[object]]] = []
    pool = None
    if isinstance(broker, InMemoryBroker):
        # Embedded mode: tasks run in this process, on resources of their own.
        pool = calendar_tasks.ResourcePool(settings, broker, context.clock)
        calendar_tasks.register(broker, pool)
        closers.append(partial(_finish_in_process, broker))
        closers.append(pool.close)
    lazy = LazyBroker(broker)
    if pool is not None:
        await lazy.ensure_started()
    closers = [*closers, lazy.shutdown, locks.close, http.aclose]
    return CalendarWeb(service, lazy, closers, pool)


async def _finish_in_process(broker: InMemoryBroker, seconds: float = 10.0) -> None:
    """Let running in-process tasks finish (briefly) before their resources close."""
    try:
        await asyncio.wait_for(broker.wait_all(), seconds)
    except TimeoutError:
        running = list(broker._running_tasks)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def install_calendars(app: FastAPI, settings: Settings, *, run_scheduler: bool = False) -> None:
    """Add the calendar routes and resources to the app. With `run_scheduler` (the
    embedded `cpsync serve`) the queue's periodic jobs fire in this process too."""
    from cpsync.calendars.routes import api_router, page_router

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            context = application.state.cpsync
            web = await open_calendar_web(context, settings)
            application.state.calendars = web
            context.scheduler.on_refreshed = partial(_fan_out, web)
            ticking = _start_scheduler(web, settings, context, with_queue_jobs=run_scheduler)
            try:
                yield state
            finally:
                ticking.cancel()
                await asyncio.gather(ticking, return_exceptions=True)
                await web.close()

    app.router.lifespan_context = lifespan
    app.include_router(page_router)
    app.include_router(api_router)


def _start_scheduler(
    web: CalendarWeb, settings: Settings, context: Any, *, with_queue_jobs: bool
) -> asyncio.Task[None]:
    """Session pruning runs in every web process (the shared locks make one of them fire
    each occurrence); the queue's periodic jobs only where no `cpsync scheduler` runs."""
    jobs = calendar_tasks.scheduled_jobs(web.broker.broker, settings) if with_queue_jobs else []
    jobs.append(_prune_sessions_job(context, settings.queue_name))
    locks = open_locks(settings.cache_url, settings.queue_name)
    clock: Clock = context.clock

    async def source() -> Sequence[ScheduledJob]:
        return jobs

    async def run() -> None:
        try:
            await Scheduler(locks, clock, source, on_fault=record_faults(context.db)).run_forever()
        finally:
            await locks.close()

    return asyncio.create_task(run(), name="cpsync-scheduler")


def _prune_sessions_job(context: Any, prefix: str) -> ScheduledJob:
    """The housekeeping the app's old refresh loop did after each refresh."""
    from cpsync.accounts.service import AccountService

    async def prune() -> None:
        async with context.db.session() as session, session.begin():
            accounts = AccountService(session, context.keyring, context.policy, context.clock)
            await accounts.prune_sessions()

    return ScheduledJob(f"{prefix}:sessions.prune", prune, every=timedelta(minutes=30))


async def _fan_out(web: CalendarWeb, reports: list[RefreshReport]) -> list[int]:
    """After the admin's manual refresh: the same fan-out as the queued refresh task."""

    async def enqueue(user_id: int) -> None:
        await web.broker.kick(calendar_tasks.SYNC_USER, user_id, False)

    changed = calendar_tasks.changed_keys(reports)
    return await calendar_tasks.fan_out_with(web.service, enqueue, changed)


def get_calendar_web(request: Request) -> CalendarWeb:
    web: CalendarWeb = request.app.state.calendars
    return web


CalendarWebDep = Annotated[CalendarWeb, Depends(get_calendar_web)]
