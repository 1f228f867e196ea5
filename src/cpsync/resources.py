"""Everything a process holds for its lifetime, opened exactly once: `open_resources`.

The app's lifespan, `cpsync worker`, `cpsync scheduler` and each CLI command open it
once and hand it down; domain services are built from it where they are used (e.g.
`cpsync.calendars.config.calendar_service(resources)`), never opening anything themselves.

Two HTTP clients, on purpose: `http` fetches the addresses the operator configured
(platforms, Codeforces), paced per host; `user_http` fetches addresses users typed
(CalDAV servers, and the Google API beside them) through `cpsync.outbound`'s SSRF guard.
The guard is the transport of an httpx client, so one client cannot apply it to some
requests only, and the configured platform URLs may legitimately be private (a mirror,
the test servers on 127.0.0.1), which the guard refuses. Calendar APIs are not scraped
sites, so `user_http` does not pace (one host serves every user).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from taskiq import AsyncBroker

from cpsync.accounts.crypto import KeyRing, load_keyring
from cpsync.cache import Cache, open_cache
from cpsync.clock import Clock, utc_now
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import Locks, open_locks
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.outbound import Resolver, guarded_transport, system_resolver
from cpsync.pacing import Pacer, RedisThrottle, ThrottleRate, throttle_from_url
from cpsync.queue import LazyBroker, make_broker
from cpsync.redaction import install_log_redaction
from cpsync.settings import Settings


@dataclass(slots=True, eq=False)
class Resources:
    settings: Settings
    clock: Clock
    db: Database  # the primary and any read replicas
    http: HttpClient  # operator-configured addresses, paced per host
    user_http: HttpClient  # user-supplied addresses, behind the SSRF guard
    cache: Cache
    locks: Locks
    broker: LazyBroker
    mailer: Mailer
    keyring: KeyRing
    codeforces_throttle: Pacer  # `http`'s pacer for Codeforces; shared when in Redis
    # SQLite has one writer: bulk merges in this process take turns (cheap elsewhere).
    merge_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@asynccontextmanager
async def open_resources(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    broker: AsyncBroker | None = None,
    migrate: bool = True,
    resolver: Resolver = system_resolver,
) -> AsyncIterator[Resources]:
    """Open every resource once and close them all, in reverse, however the body ends.

    `broker` is one taskiq's worker already runs (and shuts down itself); otherwise the
    broker of `CPSYNC_BROKER_URL`, connected on first use. Log records are masked from
    here on (`cpsync.redaction`)."""
    install_log_redaction()
    keyring = load_keyring(settings)
    async with AsyncExitStack() as stack:
        db = await open_database(settings, migrate=migrate)
        stack.push_async_callback(db.dispose)
        cache = open_cache(settings.cache_url, settings.queue_name)
        stack.push_async_callback(cache.close)
        locks = open_locks(settings.cache_url, settings.queue_name)
        stack.push_async_callback(locks.close)
        throttle = _codeforces_throttle(settings)
        if isinstance(throttle, RedisThrottle):
            stack.push_async_callback(throttle.aclose)
        # One pacing policy: Codeforces' host waits on its (possibly shared) token bucket,
        # every other host on the minimum interval.
        codeforces_host = urlsplit(settings.base_url("codeforces")).netloc
        http = await stack.enter_async_context(
            HttpClient(settings, pacers={codeforces_host: throttle})
        )
        user_http = await stack.enter_async_context(user_http_client(settings, resolver))
        lazy = LazyBroker(broker or make_broker(settings), started=broker is not None)
        # Closed second: in-process tasks finish while what they use is still open.
        stack.push_async_callback(lazy.shutdown)
        # First: calls still waiting on a slow site fail at once, so a task blocked on
        # one ends within moments (and records why) instead of holding up the shutdown.
        stack.callback(user_http.cancel_in_flight)
        stack.callback(http.cancel_in_flight)
        yield Resources(
            settings=settings,
            clock=clock,
            db=db,
            http=http,
            user_http=user_http,
            cache=cache,
            locks=locks,
            broker=lazy,
            mailer=mailer_from_url(settings.smtp_url),
            keyring=keyring,
            codeforces_throttle=throttle,
        )


def user_http_client(settings: Settings, resolver: Resolver = system_resolver) -> HttpClient:
    """For addresses users typed: every call passes `cpsync.outbound`'s rule; unpaced."""
    unpaced = settings.model_copy(update={"http_min_interval_seconds": 0})
    return HttpClient(unpaced, transport=guarded_transport(settings, resolver))


def _codeforces_throttle(settings: Settings) -> Pacer:
    rate = ThrottleRate(interval_seconds=settings.codeforces_interval_seconds)
    return throttle_from_url(settings.codeforces_throttle_url or settings.cache_url, rate)
