"""Student-tracking settings, read from the one Settings object.

`CPSYNC_SMTP_URL`, `CPSYNC_CRON_SECRET`, `CPSYNC_CODEFORCES_INTERVAL_SECONDS` (the
throttle: one call per this many seconds, default 2) and `CPSYNC_CODEFORCES_THROTTLE_URL`
(where the token bucket lives; default: the cache URL, so a Redis cache means a bucket
shared by every process).
"""

from __future__ import annotations

from dataclasses import dataclass

from cpsync.settings import Settings


@dataclass(frozen=True, slots=True)
class StudentsConfig:
    codeforces_base_url: str
    throttle_url: str
    interval_seconds: float = 2.0
    smtp_url: str = ""
    cron_secret: str = ""
    reminder_max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> StudentsConfig:
        return cls(
            codeforces_base_url=settings.base_url("codeforces"),
            throttle_url=settings.codeforces_throttle_url or settings.cache_url,
            interval_seconds=settings.codeforces_interval_seconds,
            smtp_url=settings.smtp_url,
            cron_secret=settings.cron_secret,
        )
