"""The one settings object, read from `CPSYNC_*` environment variables and `.env`.

The defaults are the embedded mode: a SQLite file, an in-process cache and queue.
Build it once at an entry point (CLI, app factory) and hand it down.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cpsync.cron import CronError, check_cron
from cpsync.secret_strength import check_text_secret


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "cpsync"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CPSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    # Comma-separated read replicas of the PostgreSQL primary (streaming replication).
    database_replica_urls: str = ""
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
    # The whole of one call (connect, every read, retries): a site trickling bytes never
    # trips the per-read timeout above.
    http_deadline_seconds: float = Field(default=30.0, gt=0)
    http_max_retries: int = Field(default=3, ge=0, le=10)
    http_backoff_seconds: float = Field(default=1.0, ge=0)
    http_max_retry_after_seconds: float = Field(default=60.0, ge=0)
    http_max_response_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    http_min_interval_seconds: float = Field(default=0.5, ge=0)

    cancel_grace_minutes: int = Field(default=180, ge=0)
    retention_days: int = Field(default=90, ge=1)
    staleness_minutes: int = Field(default=60, ge=0)
    # More upcoming contests than this in one platform's answer is a broken answer, not news.
    max_contests_per_platform: int = Field(default=2000, ge=1)
    # A contest list is read no further than this (Codeforces' whole list is ~600 KB).
    platform_max_response_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    calendar_name: str = "Programming contests (cpsync)"

    # Task queue (see cpsync.queue). Deployments sharing a broker use different names.
    queue_name: str = Field(default="cpsync", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    queue_max_retries: int = Field(default=5, ge=0, le=50)
    queue_retry_delay_seconds: float = Field(default=5.0, ge=0)
    queue_redeliver_seconds: float = Field(default=60.0, gt=0)
    # Background processes (cpsync.scheduler, cpsync.heartbeats). A dependency outage
    # (Redis, the database, the broker) makes the scheduler retry, backing off from one tick
    # up to `scheduler_backoff_max_seconds`; a step of a tick slower than its timeout counts
    # as an outage (a stalled Redis would otherwise hold the loop forever).
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    scheduler_backoff_max_seconds: float = Field(default=15.0, gt=0)
    scheduler_step_timeout_seconds: float = Field(default=30.0, gt=0)
    # Workers and schedulers say they are alive this often; three missed beats and /readyz
    # reports their kind missing.
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    # How long each /readyz probe (database, cache, broker, heartbeats) may take.
    readyz_timeout_seconds: float = Field(default=3.0, gt=0)
    timezone: str = ""

    # Web app (`cpsync serve`).
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    # Comma-separated `id:base64key` (32-byte keys), newest first.
    encryption_keys: str = ""
    trusted_proxies: str = ""
    refresh_interval_minutes: float = Field(default=30, ge=0)
    session_idle_hours: float = Field(default=48, gt=0)
    session_absolute_days: float = Field(default=14, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_header_bytes: int = Field(default=16 * 1024, gt=0)
    max_request_line_bytes: int = Field(default=8 * 1024, gt=0)
    rate_limit_window_seconds: int = Field(default=60, gt=0)
    rate_limit_requests: int = Field(default=300, gt=0)
    rate_limit_auth_requests: int = Field(default=10, gt=0)
    # Requests in flight; idle connections do not count (cpsync.web.server).
    server_limit_concurrency: int = Field(default=200, gt=0)
    server_keep_alive_seconds: int = Field(default=5, gt=0)
    # A connection's request headers must arrive within this, from connecting or from the
    # end of its previous response.
    server_header_timeout_seconds: float = Field(default=10.0, gt=0)
    # And its body within this after the headers (1 MiB in 30 s is 35 KB/s).
    server_body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Open connections per peer address; trusted proxies are exempt.
    server_max_connections_per_client: int = Field(default=64, gt=0)
    # Who may create an account until an admin chooses on /admin: open, invite or closed.
    signup_mode: str = Field(default="open", pattern="^(open|invite|closed)$")

    google_client_id: str = ""
    google_client_secret: str = ""
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    google_revoke_url: str = "https://oauth2.googleapis.com/revoke"

    # Student tracking (cpsync.students). No cron secret: no `POST /cron/sync` route.
    smtp_url: str = ""
    cron_secret: str = ""
    # The Codeforces token bucket: one call per this many seconds, shared through
    # `codeforces_throttle_url` (default: the cache URL, so Redis when scaled out).
    codeforces_interval_seconds: float = Field(default=2.0, gt=0)
    codeforces_throttle_url: str = ""
    # The lock one student sync run holds (kept alive while it runs): how long a killed
    # worker's run blocks the redelivered task before that task takes over.
    students_sync_lock_seconds: float = Field(default=300.0, gt=0)

    # Calendar sync (cpsync.calendars). The API base URL is overridden in tests.
    google_api_base_url: str = "https://www.googleapis.com"
    calendar_lock_ttl_seconds: float = Field(default=120.0, gt=0)
    calendar_batch_size: int = Field(default=50, ge=1, le=50)
    # Daily full reconciliation of every calendar (UTC cron).
    reconcile_cron: str = "17 3 * * *"
    # User-supplied URLs (CalDAV) reach only public https hosts (cpsync.outbound), except
    # in development. Self-hosters with a LAN calendar: allow private addresses (and plain
    # http) altogether, or only these comma-separated networks (e.g. 192.168.1.10/32).
    outbound_allow_private: bool = False
    outbound_allowed_networks: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("reconcile_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:

        try:
            return check_cron(value, datetime.now(UTC))
        except CronError as error:
            raise ValueError(f"{value!r}: {error}") from error

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        import ipaddress

        for part in filter(None, (item.strip() for item in value.split(","))):
            try:
                ipaddress.ip_network(part)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {part!r}") from exc
        return value

    @field_validator("secret_key", "cron_secret")
    @classmethod
    def _strong_secret(cls, value: str, info: ValidationInfo) -> str:
        # Empty: generated into the data dir (secret key) or switched off (cron secret).
        if not value.strip():
            return value
        check_text_secret(f"CPSYNC_{str(info.field_name).upper()}", value.strip())
        return value

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret)

    @property
    def plain_http_localhost(self) -> bool:
        """Serving plain HTTP on this machine only: the one case for non-Secure cookies."""
        return self.public_url.startswith(("http://localhost", "http://127.0.0.1", "http://[::1]"))

    def replica_urls(self) -> list[str]:
        return [url.strip() for url in self.database_replica_urls.split(",") if url.strip()]

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
