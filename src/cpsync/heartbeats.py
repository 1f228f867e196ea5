"""Heartbeats: each scheduler and worker says it is alive, every `heartbeat_seconds`, in
the process's cache (Redis when scaled, so the web processes see every worker's; the
process's own memory in the embedded mode, where the web process runs the scheduler).

One cache map, `heartbeats`, holds a field per process (`<kind>:<host>:<pid>`) with when
it last beat. A kind is missing when none of its processes beat within `MISSED_BEATS`
intervals. A process that stopped stays listed (as missing) for `FORGET_SECONDS`, so the
admin page shows which one went quiet; a clean shutdown removes its own field.

`/readyz` expects a scheduler and a worker when the broker is not in this process and the
cache is shared (`expected_kinds`): the embedded web process runs both itself, and an
in-process cache cannot see other processes' heartbeats.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.outages import DEPENDENCY_ERRORS, Outage

log = logging.getLogger(__name__)

MAP_KEY = "heartbeats"
SCHEDULER = "scheduler"
WORKER = "worker"
KINDS = (SCHEDULER, WORKER)
MISSED_BEATS = 3
FORGET_SECONDS = 24 * 3600.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Heartbeat:
    kind: str
    ident: str  # host:pid
    seen_at: datetime
    fresh: bool


def process_ident() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def expected_kinds(*, broker_in_process: bool, cache_url: str) -> tuple[str, ...]:
    """The kinds that must beat for this deployment to do its background work."""
    if broker_in_process or cache_url.startswith("memory://"):
        return ()
    return KINDS


class Heartbeats:
    def __init__(
        self, cache: Cache, clock: Clock, interval_seconds: float, *, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._interval = interval_seconds
        self._sleep = sleep

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=MISSED_BEATS * self._interval)

    async def beat(self, kind: str, ident: str) -> None:
        value = json.dumps({"kind": kind, "ident": ident, "seen_at": self._clock().isoformat()})
        await self._cache.set_field(MAP_KEY, f"{kind}:{ident}", value.encode(), FORGET_SECONDS)

    async def listing(self) -> list[Heartbeat]:
        """Every process heard from within `FORGET_SECONDS`, by kind then identity."""
        now = self._clock()
        beats = []
        for field, raw in (await self._cache.fields(MAP_KEY)).items():
            beat = _parse(raw)
            if beat is None or (now - beat[2]).total_seconds() > FORGET_SECONDS:
                await self._cache.delete_field(MAP_KEY, field)
                continue
            kind, ident, seen_at = beat
            beats.append(Heartbeat(kind, ident, seen_at, now - seen_at <= self.max_age))
        return sorted(beats, key=lambda b: (b.kind, b.ident))

    async def missing(self, kinds: tuple[str, ...]) -> list[str]:
        """The kinds among `kinds` with no fresh heartbeat."""
        return missing_kinds(await self.listing(), kinds) if kinds else []

    @asynccontextmanager
    async def beating(self, kind: str, ident: str | None = None) -> AsyncIterator[None]:
        """Beat as `kind` while the body runs; on a clean exit, say so by leaving."""
        me = ident or process_ident()
        task = asyncio.create_task(self._beat_forever(kind, me), name=f"heartbeat:{kind}")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            with suppress(*DEPENDENCY_ERRORS):
                await asyncio.wait_for(self._cache.delete_field(MAP_KEY, f"{kind}:{me}"), 3)

    async def _beat_forever(self, kind: str, ident: str) -> None:
        outage = Outage(
            log, f"heartbeat.{kind}", base_seconds=self._interval, max_seconds=self._interval
        )
        while True:
            try:
                await asyncio.wait_for(self.beat(kind, ident), self._interval)
            except Exception as error:
                # The cache is away: the next beat may reach it; this process is fine.
                outage.failed("beat", error)
            else:
                outage.recovered()
            await self._sleep(self._interval)


def missing_kinds(beats: list[Heartbeat], kinds: tuple[str, ...]) -> list[str]:
    alive = {beat.kind for beat in beats if beat.fresh}
    return [kind for kind in kinds if kind not in alive]


def _parse(raw: bytes) -> tuple[str, str, datetime] | None:
    try:
        entry = json.loads(raw)
        return str(entry["kind"]), str(entry["ident"]), datetime.fromisoformat(entry["seen_at"])
    except (ValueError, KeyError, TypeError):
        return None
