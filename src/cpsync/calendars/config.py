"""Calendar sync options and service, built from the process's `Resources`."""

from __future__ import annotations

from cpsync.calendars.google import GoogleConfig
from cpsync.calendars.service import CalendarOptions, CalendarService
from cpsync.resources import Resources
from cpsync.settings import Settings


def calendar_service(resources: Resources) -> CalendarService:
    """Calendar URLs come from users: the service talks through the guarded client."""
    return CalendarService(
        resources.db,
        resources.user_http,
        resources.keyring,
        resources.locks,
        resources.cache,
        calendar_options(resources.settings),
        resources.clock,
    )


def calendar_options(settings: Settings) -> CalendarOptions:
    google = GoogleConfig(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        api_base_url=settings.google_api_base_url,
        token_url=settings.google_token_url,
        batch_size=settings.calendar_batch_size,
        backoff_seconds=settings.http_backoff_seconds,
    )
    return CalendarOptions(
        google=google,
        lock_ttl_seconds=settings.calendar_lock_ttl_seconds,
        caldav_backoff_seconds=settings.http_backoff_seconds,
        lock_prefix=settings.queue_name,
        sync_retries=settings.queue_max_retries,
        retry_delay_seconds=settings.queue_retry_delay_seconds,
    )
