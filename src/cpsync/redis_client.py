"""How every Redis connection of the process is made (cache, locks, the Codeforces bucket,
the task broker).

- `socket_timeout=None`: redis-py's default read timeout swallows task cancellation
  (see stack.md); a connect still gives up after a few seconds.
- A command that meets a dead connection is tried again on a fresh one, a few times with
  a short backoff. `Redis.from_url` otherwise builds connections that never retry, so after
  Redis restarts, the first command on each pooled connection failed with "Connection
  closed by server" and the task that sent it was lost.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

CONNECT_TIMEOUT_SECONDS = 3.0
RETRIES = 3


def connection_options() -> dict[str, Any]:
    """Keyword arguments for a redis-py client or connection pool."""
    return {
        "socket_timeout": None,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES),
        "retry_on_error": [RedisConnectionError],
    }


def open_redis(url: str) -> Redis:
    return Redis.from_url(url, **connection_options())
