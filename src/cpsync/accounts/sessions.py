"""Session ids, their expiry rules and the cookies that carry them.

The session cookie holds a random id; the database keeps its SHA-256 only, so a leaked
table signs nobody in. A session ends at its absolute limit (created + N days) or when idle
too long (last seen + M hours), whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cpsync.settings import Settings

SESSION_COOKIE = "cpsync_session"
PRESESSION_COOKIE = "cpsync_pre"
# Writing last_seen_at on every request would turn every page view into a write.
TOUCH_INTERVAL = timedelta(minutes=5)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta
    secure_cookies: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(hours=settings.session_idle_hours),
            absolute=timedelta(days=settings.session_absolute_days),
            secure_cookies=not settings.plain_http_localhost,
        )

    def expired(self, created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
        return now >= created_at + self.absolute or now >= last_seen_at + self.idle

    def needs_touch(self, last_seen_at: datetime, now: datetime) -> bool:
        return now - last_seen_at >= TOUCH_INTERVAL

    def cookie_max_age(self) -> int:
        return int(self.absolute.total_seconds())
