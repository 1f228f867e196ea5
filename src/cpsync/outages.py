"""A dependency outage as a long-running loop (the scheduler, a heartbeat) lives through it.

`is_outage(error)` says whether an error means "Redis, the database or the broker is
away": a refused or dropped connection, a timeout, the queue or cache saying it is
unavailable; not a query the database refused (a constraint, bad SQL), which is a bug.
`Outage` logs the first failure of an outage and its end (one line each, however many
attempts fail in between) and says how long to wait before the next attempt: the base
delay, doubled on each failure up to a cap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiormq.exceptions import AMQPError
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from taskiq.exceptions import SendTaskError

from cpsync.cache import CacheError
from cpsync.queue import QueueUnavailableError

DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    RedisError,  # ConnectionError, TimeoutError, BusyLoadingError (a restarting Redis)
    # OperationalError, InterfaceError, and the plain DBAPIError a PostgreSQL stopping
    # under a query raises with asyncpg ("connection was closed in the middle of operation").
    DBAPIError,
    OSError,  # refused connections while connecting (asyncpg, aiosqlite, sockets)
    TimeoutError,  # a step slower than its timeout: a stalled server
    CacheError,
    QueueUnavailableError,
    SendTaskError,  # taskiq's wrapper around a broker that could not take a message
    AMQPError,
)
# The database answered, and refused the statement: the same call fails again.
REFUSED_STATEMENTS = (IntegrityError, ProgrammingError, DataError)


def is_outage(error: BaseException) -> bool:
    return isinstance(error, DEPENDENCY_ERRORS) and not isinstance(error, REFUSED_STATEMENTS)


class Outage:
    """One loop's current outage, if any.

    `failed(step, error)` is called for each failed attempt and returns the delay before
    the next; `recovered()` after an attempt that succeeded. An error that is not a
    dependency's (a bug) is logged with its traceback, once per outage too, and retried
    the same way: the loop never ends on it.
    """

    def __init__(
        self,
        log: logging.Logger,
        event: str,
        *,
        base_seconds: float,
        max_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._event = event
        self._base = base_seconds
        self._max = max(max_seconds, base_seconds)
        self._monotonic = monotonic
        self.failures = 0
        self._started = 0.0

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, step: str, error: BaseException) -> float:
        self.failures += 1
        delay = min(self._max, self._base * 2.0 ** (self.failures - 1))
        if self.failures == 1:
            self._started = self._monotonic()
            known = is_outage(error)
            self._log.warning(
                "%s.dependency.unavailable step=%s error=%s retrying_in=%.1fs",
                self._event,
                step,
                describe(error),
                delay,
                exc_info=None if known else error,
            )
        else:
            self._log.debug(
                "%s.dependency.still_unavailable step=%s attempt=%d error=%s",
                self._event,
                step,
                self.failures,
                describe(error),
            )
        return delay

    def recovered(self) -> None:
        if not self.failures:
            return
        # A warning like the outage's start, so the pair shows in the same log.
        self._log.warning(
            "%s.dependency.recovered after=%.1fs attempts=%d",
            self._event,
            self._monotonic() - self._started,
            self.failures,
        )
        self.failures = 0


def describe(error: BaseException) -> str:
    """`Type: first line of the message`, with the cause a wrapper hides (taskiq's
    SendTaskError says nothing of its own)."""
    shown = error
    while not str(shown) and shown.__cause__ is not None:
        shown = shown.__cause__
    message = str(shown).splitlines()[0] if str(shown) else ""
    name = type(error).__name__
    if shown is not error:
        name = f"{name}({type(shown).__name__})"
    return f"{name}: {message}" if message else name
