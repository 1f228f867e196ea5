"""The one settings object, read from `CPSYNC_*` environment variables and `.env`.

The defaults are the embedded mode: a SQLite file, an in-process cache and queue.
Build it once at an entry point (CLI, app factory) and hand it down.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "cpsync"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CPSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    cache_url: str = "memory://"
    broker_url: str = "memory://"

    # Upstream sites: scheme and host only; request paths are the real ones.
    codeforces_base_url: str = "https://codeforces.com"
    leetcode_base_url: str = "https://leetcode.com"
    codechef_base_url: str = "https://www.codechef.com"
    atcoder_base_url: str = "https://atcoder.jp"
    hackerrank_base_url: str = "https://www.hackerrank.com"
    geeksforgeeks_base_url: str = "https://practiceapi.geeksforgeeks.org"
    code360_base_url: str = "https://www.naukri.com"

    http_timeout_seconds: float = Field(default=20.0, gt=0)
    http_max_retries: int = Field(default=3, ge=0, le=10)
    http_backoff_seconds: float = Field(default=1.0, ge=0)
    http_max_retry_after_seconds: float = Field(default=60.0, ge=0)
    http_max_response_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    http_min_interval_seconds: float = Field(default=0.5, ge=0)

    cancel_grace_minutes: int = Field(default=180, ge=0)
    retention_days: int = Field(default=90, ge=1)
    staleness_minutes: int = Field(default=60, ge=0)
    calendar_name: str = "Programming contests (cpsync)"
    timezone: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'cpsync.db'}"

    def base_url(self, platform: str) -> str:
        url: str = getattr(self, f"{platform}_base_url")
        return url.rstrip("/")

    def display_zone(self) -> tzinfo:
        """Where the command line shows times: `CPSYNC_TIMEZONE`, else the system zone."""
        if self.timezone:
            return ZoneInfo(self.timezone)
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC
