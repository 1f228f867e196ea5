"""Calendar sync through the service, the database and both real sinks.

Google is the faithful local fake; CalDAV is a real Radicale. Contest rows change the way
a refresh changes them (new values, revision bumped), and the calendars are read back.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cpsync.accounts.models import User
from cpsync.cache import MemoryCache
from cpsync.calendars.caldav import CalDavConfig, CalDavSink
from cpsync.calendars.models import (
    LinkState,
    Notification,
    RequestState,
    RunStatus,
    SyncRunRow,
)
from cpsync.calendars.plan import event_id
from cpsync.calendars.service import CalendarOptions, CalendarService, SyncRequestNotFoundError
from cpsync.contests.models import ContestStatus
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.settings import Settings
from tests.calendars.conftest import CountingTransport, Shown, read_collection
from tests.calendars.fake_google import FakeGoogleServer, fake_google_server
from tests.calendars.service_support import (
    FIRST_START,
    ServiceKit,
    add_contests,
    add_user,
    change_contest,
    google_config,
    keyring,
    link_row,
    pushed_rows,
    runs_of,
    set_platforms,
)

WANTED = {
    ("codeforces", "2050"),
    ("codeforces", "2051"),
    ("codeforces", "2052"),
    ("atcoder", "abc440"),
    ("atcoder", "ahc060"),
}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
    )
    database = await open_database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def google_server_for_service() -> Iterator[FakeGoogleServer]:
    with fake_google_server() as server:
        yield server


@dataclass
class Linked:
    """One user with one connected calendar, and ways to look at that calendar."""

    kind: str
    service: CalendarService
    db: Database
    user_id: int
    link_id: int
    transport: CountingTransport
    google: FakeGoogleServer | None = None
    caldav: CalDavSink | None = None

    async def request_sync(self) -> str:
        """What "Sync now" does before it enqueues the run: a queued request, committed."""
        async with self.db.session() as session, session.begin():
            return self.service.add_sync_request(session, self.user_id).id

    async def sync(self, *, check_remote: bool = False) -> int:
        return await self.service.sync_user(self.user_id, check_remote=check_remote)

    async def shown(self) -> dict[tuple[str, str], Shown]:
        if self.caldav is not None:
            return await read_collection(self.transport.inner, self.caldav)
        assert self.google is not None
        link = await link_row(self.db, self.link_id)
        shown = {}
        for event in self.google.fake.live_events(link.target).values():
            private = event["extendedProperties"]["private"]
            shown[(private["platform"], private["key"])] = Shown(
                event["summary"], event["start"]["dateTime"], event["end"]["dateTime"]
            )
        return shown

    def writes(self) -> int:
        if self.google is not None:
            return self.google.fake.writes()
        return sum(1 for m, _, _ in self.transport.requests if m in ("PUT", "DELETE"))

    def requests(self) -> int:
        if self.google is not None:
            return sum(self.google.fake.http_requests.values())
        return len(self.transport.requests)

    def reset(self) -> None:
        self.transport.requests.clear()
        if self.google is not None:
            self.google.fake.reset_counters()

    async def user_deletes(self, platform: str, key: str) -> None:
        if self.google is not None:
            link = await link_row(self.db, self.link_id)
            self.google.fake.user_delete(event_id(self.user_id, platform, key), link.target)
            return
        assert self.caldav is not None
        url = self.caldav._url(self.caldav.external_id(platform, key))
        auth = {"Authorization": self.caldav._auth}
        answer = await self.transport.inner.send("DELETE", url, headers=auth)
        assert answer.status in (200, 204)


async def make_linked(
    kind: str, db: Database, http: HttpClient, request: pytest.FixtureRequest
) -> Linked:
    transport = CountingTransport(http)
    kit = ServiceKit(db, http, keyring(), MemoryLocks(), MemoryCache(), _options(request))
    service = kit.service()
    service._http = transport  # count every request the service makes
    user_id = await add_user(db, f"{kind}-{uuid.uuid4().hex[:6]}@example.org")
    await add_contests(db)
    if kind == "google":
        server: FakeGoogleServer = request.getfixturevalue("google_server_for_service")
        link_id = await service.connect_google(user_id, "refresh-1", dedicated_name="Contests")
        return Linked(kind, service, db, user_id, link_id, transport, google=server)
    radicale: str = request.getfixturevalue("radicale_url")
    url = f"{radicale}/alice/contests-{uuid.uuid4().hex[:8]}/"
    link_id = await service.connect_caldav(user_id, url, "alice", "app-password")
    sink = CalDavSink(http, CalDavConfig(url, "alice", "app-password"))
    return Linked(kind, service, db, user_id, link_id, transport, caldav=sink)


def _options(request: pytest.FixtureRequest) -> CalendarOptions:
    server: FakeGoogleServer = request.getfixturevalue("google_server_for_service")
    return CalendarOptions(
        google=google_config(server.base_url, server.token_url),
        lock_ttl_seconds=30,
        caldav_backoff_seconds=0.01,
        wait_poll_seconds=0.01,
    )


@pytest.fixture(params=["google", "caldav"])
async def linked(request: pytest.FixtureRequest, db: Database, http: HttpClient) -> Linked:
    return await make_linked(request.param, db, http, request)


@pytest.fixture
async def google_linked(request: pytest.FixtureRequest, db: Database, http: HttpClient) -> Linked:
    return await make_linked("google", db, http, request)


async def test_first_sync_puts_exactly_the_matching_contests(linked: Linked) -> None:
    linked.reset()
    assert await linked.sync() == 1

    shown = await linked.shown()
    assert set(shown) == WANTED  # leetcode is not among the user's platforms
    assert shown[("codeforces", "2050")].summary == "[Codeforces] Round 2050"
    runs = await runs_of(linked.db, linked.link_id)
    assert [(r.status, r.inserted, r.failed) for r in runs] == [(RunStatus.SUCCEEDED, 5, 0)]
    assert linked.writes() == 5


async def test_unchanged_sync_costs_nothing_and_a_check_costs_one_read(linked: Linked) -> None:
    await linked.sync()
    await linked.sync(check_remote=True)  # our own writes come back once, intact
    linked.reset()

    await linked.sync()  # a fan-out sync with nothing changed: no call at all
    assert linked.requests() == 0

    await linked.sync(check_remote=True)  # the daily check: one read, no write
    assert (linked.writes(), linked.requests()) == (0, 1)


async def test_reschedule_is_one_update(linked: Linked) -> None:
    await linked.sync()
    moved = FIRST_START + timedelta(hours=3)
    await change_contest(
        linked.db, "codeforces", "2050", start=moved, end=moved + timedelta(hours=2)
    )
    linked.reset()

    await linked.sync()

    assert linked.writes() == 1
    shown = await linked.shown()
    assert set(shown) == WANTED
    assert str(shown[("codeforces", "2050")].start).startswith("2026-12-05")
    assert (await runs_of(linked.db, linked.link_id))[-1].updated == 1


async def test_cancellation_is_one_delete(linked: Linked) -> None:
    await linked.sync()
    await change_contest(linked.db, "atcoder", "abc440", status=ContestStatus.CANCELLED)
    linked.reset()

    await linked.sync()

    assert linked.writes() == 1
    assert set(await linked.shown()) == WANTED - {("atcoder", "abc440")}


async def test_dropped_platform_deletes_its_events(linked: Linked) -> None:
    await linked.sync()
    await set_platforms(linked.db, linked.user_id, ["codeforces"])

    await linked.sync()

    assert set(await linked.shown()) == {k for k in WANTED if k[0] == "codeforces"}
    assert (await runs_of(linked.db, linked.link_id))[-1].deleted == 2


async def test_event_deleted_in_the_calendar_is_restored_by_the_check(linked: Linked) -> None:
    await linked.sync()
    await linked.user_deletes("codeforces", "2052")

    await linked.sync(check_remote=True)

    assert set(await linked.shown()) == WANTED


async def test_revoked_token_marks_the_link_and_notifies_once(google_linked: Linked) -> None:
    assert google_linked.google is not None
    await google_linked.sync()
    google_linked.google.fake.revoke("refresh-1")  # also voids the access tokens

    await google_linked.sync(check_remote=True)
    await google_linked.sync(check_remote=True)  # not synced any more: no run, no 2nd email

    link = await link_row(google_linked.db, google_linked.link_id)
    assert link.state == LinkState.NEEDS_RECONNECT
    runs = await runs_of(google_linked.db, google_linked.link_id)
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED, RunStatus.FAILED]
    async with google_linked.db.session() as session:
        notes = (await session.scalars(select(Notification))).all()
        assert [n.kind for n in notes] == ["reconnect_needed"]
        assert await session.get(User, google_linked.user_id) is not None  # never deleted
    # Reconnecting revives the link; the next sync runs again.
    google_linked.google.fake.refresh_tokens.add("refresh-2")
    await google_linked.service.reconnect(google_linked.user_id, google_linked.link_id, "refresh-2")
    assert (await link_row(google_linked.db, google_linked.link_id)).state == LinkState.ACTIVE
    await google_linked.sync(check_remote=True)
    assert (await runs_of(google_linked.db, google_linked.link_id))[-1].status == "succeeded"


async def test_failed_calls_fail_the_run_and_are_retried_next_time(google_linked: Linked) -> None:
    assert google_linked.google is not None
    google_linked.google.fake.inject(400, "badRequest", op="insert", times=2)

    await google_linked.sync()

    runs = await runs_of(google_linked.db, google_linked.link_id)
    assert (runs[-1].status, runs[-1].inserted, runs[-1].failed) == (RunStatus.FAILED, 3, 2)
    assert "badRequest" in runs[-1].error or "400" in runs[-1].error
    failed = [
        r for r in await pushed_rows(google_linked.db, google_linked.link_id) if r.state == "failed"
    ]
    assert len(failed) == 2
    assert all(r.last_error for r in failed)

    await google_linked.sync()

    assert set(await google_linked.shown()) == WANTED
    assert (await runs_of(google_linked.db, google_linked.link_id))[-1].status == "succeeded"


async def test_rate_limited_calls_back_off_and_succeed(google_linked: Linked) -> None:
    assert google_linked.google is not None
    google_linked.google.fake.inject(429, "rateLimitExceeded", op="insert", times=3)
    google_linked.google.fake.inject(403, "rateLimitExceeded", op="insert", times=2)

    await google_linked.sync()

    assert set(await google_linked.shown()) == WANTED
    assert (await runs_of(google_linked.db, google_linked.link_id))[-1].status == "succeeded"


async def test_unavailable_calendar_is_retried_within_one_run(google_linked: Linked) -> None:
    await google_linked.sync()
    assert google_linked.google is not None
    google_linked.google.fake.inject(503, "backendError", op="list", times=100)

    await google_linked.sync(check_remote=True)  # no error: the queue must not retry it

    first, last = await runs_of(google_linked.db, google_linked.link_id)
    assert first.status == RunStatus.SUCCEEDED
    assert (last.status, last.attempts) == (RunStatus.FAILED, 6)  # 1 + sync_retries
    assert "503" in last.error
    assert last.finished_at is not None


async def test_a_calendar_back_before_the_last_attempt_succeeds_in_the_same_run(
    google_linked: Linked,
) -> None:
    assert google_linked.google is not None
    google_linked.google.fake.inject(503, "backendError", op="list", times=2)

    await google_linked.sync(check_remote=True)

    (run,) = await runs_of(google_linked.db, google_linked.link_id)
    assert (run.status, run.attempts, run.inserted) == (RunStatus.SUCCEEDED, 3, 5)


async def test_ended_contests_stay_in_the_calendar(google_linked: Linked) -> None:
    await google_linked.sync()
    ended = FIRST_START - timedelta(days=30)
    await change_contest(
        google_linked.db, "codeforces", "2050", start=ended, end=ended + timedelta(hours=2)
    )
    google_linked.reset()

    await google_linked.sync()

    assert google_linked.writes() == 0  # past events are history, not ours to remove


async def test_sync_request_status(google_linked: Linked) -> None:
    request_id = await google_linked.request_sync()
    queued = await google_linked.service.request_status(google_linked.user_id, request_id)
    assert queued.state == RequestState.QUEUED

    await google_linked.sync()

    done = await google_linked.service.request_status(google_linked.user_id, request_id)
    assert done.state == RequestState.SUCCEEDED
    assert "+5" in done.summary
    with pytest.raises(SyncRequestNotFoundError):
        await google_linked.service.request_status(google_linked.user_id + 1, request_id)


async def test_fan_out_picks_matching_users_and_holders(
    google_linked: Linked, db: Database
) -> None:
    service = google_linked.service
    await google_linked.sync()
    leetcoder = await add_user(db, "lc@example.org", platforms=["leetcode"])
    await service.connect_google(leetcoder, "refresh-1", dedicated_name="LC")
    unlinked = await add_user(db, "nolink@example.org", platforms=["codeforces"])

    assert await service.users_to_sync([("codeforces", "2050")]) == [google_linked.user_id]
    assert await service.users_to_sync([("leetcode", "weekly-contest-480")]) == [leetcoder]
    # A contest that stopped matching still concerns whoever holds its event.
    await set_platforms(db, google_linked.user_id, ["atcoder"])
    assert await service.users_to_sync([("codeforces", "2051")]) == [google_linked.user_id]
    assert unlinked not in await service.users_to_reconcile()


async def test_concurrent_requests_coalesce_into_at_most_two_runs(google_linked: Linked) -> None:
    service = google_linked.service
    spans: list[tuple[float, float]] = []
    original = service._run
    loop = asyncio.get_running_loop()
    requests = 50
    asked = 0
    all_asked = asyncio.Event()
    record_request = service._flags.set

    async def counted(key: str, value: bytes, ttl_seconds: float) -> None:
        nonlocal asked
        await record_request(key, value, ttl_seconds)
        if key.startswith("pending:"):  # every sync_user call leaves its request first
            asked += 1
            if asked == requests:
                all_asked.set()

    async def timed(user_id: int, check_remote: bool) -> Any:
        began = loop.time()
        await all_asked.wait()  # the first run lasts until every request has arrived
        result = await original(user_id, check_remote)
        spans.append((began, loop.time()))
        return result

    service._run = timed  # type: ignore[method-assign]
    service._flags.set = counted  # type: ignore[method-assign]
    await asyncio.gather(*(google_linked.sync() for _ in range(requests)))

    assert 1 <= len(spans) <= 2
    spans.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert set(await google_linked.shown()) == WANTED


async def test_a_run_left_running_by_a_killed_worker_is_closed_by_the_next(
    google_linked: Linked,
) -> None:
    async with google_linked.db.session() as session, session.begin():
        session.add(
            SyncRunRow(link_id=google_linked.link_id, started_at=FIRST_START, status="running")
        )

    await google_linked.sync()

    abandoned, run = await runs_of(google_linked.db, google_linked.link_id)
    assert (abandoned.status, run.status) == (RunStatus.FAILED, RunStatus.SUCCEEDED)
    assert "interrupted" in abandoned.error
    assert abandoned.finished_at is not None


class DisconnectingHttp:
    """The user disconnects their second calendar while the first one syncs."""

    def __init__(self, linked: Linked, second_link: int) -> None:
        self.linked, self.second_link, self.inner = linked, second_link, linked.service._http

    async def send(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.second_link:
            link, self.second_link = self.second_link, 0
            await self.linked.service.disconnect(self.linked.user_id, link)
        return await self.inner.send(method, url, **kwargs)


async def test_a_calendar_disconnected_during_a_run_is_skipped(google_linked: Linked) -> None:
    service = google_linked.service
    second = await service.connect_google(google_linked.user_id, "refresh-1", dedicated_name="B")
    service._http = DisconnectingHttp(google_linked, second)
    request_id = await google_linked.request_sync()

    await google_linked.sync()

    job = await service.request_status(google_linked.user_id, request_id)
    assert job.state == RequestState.SUCCEEDED
    assert [run.status for run in await runs_of(google_linked.db, google_linked.link_id)] == [
        RunStatus.SUCCEEDED
    ]
    assert await runs_of(google_linked.db, second) == []
