"""One event that cannot be written as iCalendar (a CR/LF in its key and URL, stored
before the parsers checked them) fails alone: the others sync, against a real Radicale."""

from __future__ import annotations

import uuid

from cpsync.cache import MemoryCache
from cpsync.calendars.caldav import CalDavConfig, CalDavSink
from cpsync.calendars.models import RunStatus
from cpsync.calendars.plan import PushState
from cpsync.calendars.service import CalendarOptions
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from tests.calendars.conftest import (
    CalDavHarness,
    contest,
    expected_events,
    read_collection,
    shown_events,
)
from tests.calendars.service_support import (
    ServiceKit,
    add_contests,
    add_user,
    google_config,
    keyring,
    runs_of,
)

BAD_KEY = "x\r\nX-Evil: 1"


async def test_caldav_run_fails_only_the_unwritable_event(caldav_harness: CalDavHarness) -> None:
    good = expected_events(caldav_harness)
    bad = contest("hackerrank", BAD_KEY)  # its URL carries the key, CR/LF included
    caldav_harness.desired = [*caldav_harness.desired, bad]

    run = await caldav_harness.sync()

    assert (run.summary.inserted, run.summary.failed) == (6, 1)
    (error,) = run.summary.errors
    assert error.startswith("hackerrank/'x\\r\\nX-Evil: 1': cannot be written as iCalendar")
    assert await shown_events(caldav_harness) == good
    (record,) = [r for r in caldav_harness.records if r.key == BAD_KEY]
    assert record.state == PushState.FAILED


async def test_caldav_unwritable_event_costs_no_call_on_later_runs(
    caldav_harness: CalDavHarness,
) -> None:
    caldav_harness.desired = [*caldav_harness.desired, contest("hackerrank", BAD_KEY)]
    await caldav_harness.sync()
    caldav_harness.reset_counters()

    run = await caldav_harness.sync()

    assert (run.summary.inserted, run.summary.updated, run.summary.failed) == (0, 0, 1)
    assert caldav_harness.writes() == 0


async def test_service_records_the_run_with_the_others_synced(
    database: Database, http: HttpClient, radicale_url: str
) -> None:
    # Google is never called here: its settings only have to exist.
    options = CalendarOptions(
        google=google_config("http://127.0.0.1:9", "http://127.0.0.1:9/token"),
        caldav_backoff_seconds=0.01,
        wait_poll_seconds=0.01,
    )
    service = ServiceKit(database, http, keyring(), MemoryLocks(), MemoryCache(), options).service()
    user_id = await add_user(database, f"caldav-{uuid.uuid4().hex[:6]}@example.org")
    await add_contests(database)
    await add_contests(database, [("codeforces", BAD_KEY, 1)])
    url = f"{radicale_url}/alice/contests-{uuid.uuid4().hex[:8]}/"
    link_id = await service.connect_caldav(user_id, url, "alice", "app-password")

    await service.sync_user(user_id)

    reader = CalDavSink(http, CalDavConfig(url, "alice", "app-password"))
    shown = await read_collection(http, reader)
    assert set(shown) == {
        ("codeforces", "2050"),
        ("codeforces", "2051"),
        ("codeforces", "2052"),
        ("atcoder", "abc440"),
        ("atcoder", "ahc060"),
    }
    (run,) = await runs_of(database, link_id)
    assert (run.status, run.inserted, run.failed) == (RunStatus.FAILED, 5, 1)
    assert "cannot be written as iCalendar" in run.error
