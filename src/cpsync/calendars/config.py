"""Calendar sync options and outbound client, from the one `Settings` object."""

from __future__ import annotations

from cpsync.calendars.google import GoogleConfig
from cpsync.calendars.service import CalendarOptions
from cpsync.http import HttpClient
from cpsync.outbound import Resolver, guarded_transport, system_resolver
from cpsync.settings import Settings


def calendar_http_client(settings: Settings, resolver: Resolver = system_resolver) -> HttpClient:
    """Calendar URLs come from users: every call passes `cpsync.outbound`'s rule.
    Calendar APIs are not scraped sites: no per-host pacing (one host serves all users)."""
    unpaced = settings.model_copy(update={"http_min_interval_seconds": 0})
    return HttpClient(unpaced, transport=guarded_transport(settings, resolver))


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
