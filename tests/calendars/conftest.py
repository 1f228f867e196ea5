"""Fixtures for the calendar sinks: the fake Google, a real Radicale, and one harness
that drives either sink through the same scenarios as the future service would."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from icalendar import Calendar

from cpsync.calendars.caldav import CalDavConfig, CalDavSink
from cpsync.calendars.google import GoogleAuth, GoogleCalendarSink, GoogleConfig, GoogleToken
from cpsync.calendars.plan import DesiredEvent, DesiredStatus, PushedEvent
from cpsync.calendars.sync import SyncRun, sync_calendar
from cpsync.calendars.transport import RawHttp
from cpsync.http import HttpClient, HttpResponse
from cpsync.resources import user_http_client
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogleServer, fake_google_server

BASE = datetime(2026, 12, 5, 14, 35, tzinfo=UTC)
USER_ID = 42


def contest(
    platform: str,
    key: str,
    *,
    start: datetime = BASE,
    revision: int = 1,
    name: str | None = None,
    status: DesiredStatus = DesiredStatus.SCHEDULED,
    reminders: tuple[int, ...] = (30, 10),
    colour: str | None = "7",
) -> DesiredEvent:
    name = name or f"Round {key}"
    url = f"https://example.org/{platform}/{key}"
    return DesiredEvent(
        platform=platform,
        key=key,
        revision=revision,
        summary=f"[{platform.title()}] {name}",
        description=name,
        url=url,
        start=start,
        end=start + timedelta(hours=2),
        status=status,
        reminders=reminders,
        colour=colour,
    )


def starter_contests() -> list[DesiredEvent]:
    """Six contests on three platforms; two start at the same second (Div. 1 / Div. 2)."""
    return [
        contest("codeforces", "2050"),
        contest("codeforces", "2051"),  # same start as 2050: must not collide
        contest("codeforces", "2052", start=BASE + timedelta(days=1)),
        contest("atcoder", "abc440", start=BASE + timedelta(days=2)),
        contest("atcoder", "ahc060", start=BASE + timedelta(days=3)),
        contest("leetcode", "weekly-contest-480", start=BASE + timedelta(days=4)),
    ]


def rescheduled(event: DesiredEvent, delta: timedelta) -> DesiredEvent:
    return replace(
        event, start=event.start + delta, end=event.end + delta, revision=event.revision + 1
    )


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class CountingTransport:
    """Wraps the real transport and remembers every request (for CalDAV cost checks)."""

    def __init__(self, inner: RawHttp) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes = b""
    ) -> HttpResponse:
        self.requests.append((method, url, dict(headers)))
        return await self.inner.send(method, url, headers=headers, content=content)

    def methods(self) -> Counter[str]:
        return Counter(method for method, _, _ in self.requests)


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    """The guarded calendar client; Radicale and the fake Google listen on 127.0.0.1, so
    private hosts are allowed explicitly, as a self-hoster with a LAN calendar would."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        public_url="https://cpsync.example",
        outbound_allow_private=True,
        http_timeout_seconds=5,
        http_max_retries=0,
    )
    async with user_http_client(settings) as client:
        yield client


@pytest.fixture
def google_server() -> Iterator[FakeGoogleServer]:
    with fake_google_server() as server:
        yield server


@dataclass
class Harness:
    """One user's calendar link: what the service would hold in its tables."""

    name: str
    sink: Any
    desired: list[DesiredEvent] = field(default_factory=starter_contests)
    records: list[PushedEvent] = field(default_factory=list)
    cursor: str | None = None
    runs: list[SyncRun] = field(default_factory=list)

    async def sync(self) -> SyncRun:
        run = await sync_calendar(self.sink, self.desired, self.records, self.cursor)
        self.records, self.cursor = run.records, run.cursor
        self.runs.append(run)
        return run

    def replace_desired(self, key: str, new: DesiredEvent | None) -> None:
        events = [e for e in self.desired if e.key != key]
        self.desired = [*events, new] if new else events


@dataclass(frozen=True)
class Shown:
    """An event as the calendar shows it, the same for both sinks."""

    summary: str
    start: datetime
    end: datetime


class GoogleHarness(Harness):
    server: FakeGoogleServer
    sleep: RecordingSleep

    def calendar(self) -> dict[tuple[str, str], Shown]:
        shown: dict[tuple[str, str], Shown] = {}
        for event in self.server.fake.live_events(self.sink.calendar_id).values():
            private = event["extendedProperties"]["private"]
            shown[(private["platform"], private["key"])] = Shown(
                event["summary"],
                datetime.fromisoformat(event["start"]["dateTime"]),
                datetime.fromisoformat(event["end"]["dateTime"]),
            )
        return shown

    def writes(self) -> int:
        return self.server.fake.writes()

    def reads(self) -> int:
        return self.server.fake.reads()

    def reset_counters(self) -> None:
        self.server.fake.reset_counters()

    def external_id(self, key: str) -> str:
        event = next(e for e in self.desired if e.key == key)
        return str(self.sink.external_id(event.platform, event.key))

    async def user_edits(self, key: str) -> None:
        self.server.fake.user_edit(
            self.external_id(key), self.sink.calendar_id, summary="my own title"
        )

    async def user_deletes(self, key: str) -> None:
        self.server.fake.user_delete(self.external_id(key), self.sink.calendar_id)


def make_google_sink(
    server: FakeGoogleServer, http: HttpClient, sleep: RecordingSleep, **config: Any
) -> GoogleCalendarSink:
    transport = http
    google_config = GoogleConfig(
        client_id="client-id",
        client_secret="client-secret",
        api_base_url=server.base_url,
        token_url=server.token_url,
        backoff_seconds=0.5,
        **config,
    )
    expired = GoogleToken("stale", datetime(2000, 1, 1, tzinfo=UTC), "refresh-1")
    auth = GoogleAuth(transport, google_config, expired)
    return GoogleCalendarSink(transport, auth, google_config, user_id=USER_ID, sleep=sleep)


@pytest.fixture
def google_harness(google_server: FakeGoogleServer, http: HttpClient) -> GoogleHarness:
    sleep = RecordingSleep()
    harness = GoogleHarness("google", make_google_sink(google_server, http, sleep))
    harness.server, harness.sleep = google_server, sleep
    return harness


class CalDavHarness(Harness):
    transport: CountingTransport
    other_client: CalDavSink  # "the user's phone": edits through the same server

    def _requests(self, methods: tuple[str, ...]) -> int:
        return sum(1 for method, _, _ in self.transport.requests if method in methods)

    def writes(self) -> int:
        return self._requests(("PUT", "DELETE"))

    def reads(self) -> int:
        return self._requests(("REPORT", "PROPFIND", "GET"))

    def reset_counters(self) -> None:
        self.transport.requests.clear()

    async def calendar_async(self) -> dict[tuple[str, str], Shown]:
        return await read_collection(self.transport.inner, self.sink)

    async def user_edits(self, key: str) -> None:
        event = next(e for e in self.desired if e.key == key)
        path = self.sink.external_id(event.platform, event.key)
        url = self.sink._url(path)
        auth = {"Authorization": self.sink._auth}
        current = await self.transport.inner.send("GET", url, headers=auth)
        body = current.body.replace(event.summary.encode(), b"my own title")
        headers = {**auth, "Content-Type": "text/calendar"}
        answer = await self.transport.inner.send("PUT", url, headers=headers, content=body)
        assert answer.status in (201, 204)

    async def user_deletes(self, key: str) -> None:
        event = next(e for e in self.desired if e.key == key)
        url = self.sink._url(self.sink.external_id(event.platform, event.key))
        auth = {"Authorization": self.sink._auth}
        answer = await self.transport.inner.send("DELETE", url, headers=auth)
        assert answer.status in (200, 204)


async def read_collection(transport: Any, sink: CalDavSink) -> dict[tuple[str, str], Shown]:
    """Every event in the collection, read back and parsed as a client would."""
    changes = await sink.changes(None)
    shown: dict[tuple[str, str], Shown] = {}
    for item in changes.events:
        if item.deleted:
            continue  # a tombstone some servers report even in a full listing
        response = await transport.send(
            "GET", sink._url(item.external_id), headers={"Authorization": sink._auth}
        )
        event = Calendar.from_ical(response.body).walk("VEVENT")[0]
        platform, key = str(event["UID"]).removesuffix("@cpsync").split("-", 1)
        shown[(platform, key)] = Shown(
            str(event["SUMMARY"]), event["DTSTART"].dt, event["DTEND"].dt
        )
    return shown


@pytest.fixture
async def caldav_harness(radicale_url: str, http: HttpClient) -> CalDavHarness:
    transport = CountingTransport(http)
    config = CalDavConfig(
        collection_url=f"{radicale_url}/alice/contests-{uuid.uuid4().hex[:8]}/",
        username="alice",
        password="app-password",
        backoff_seconds=0.01,
    )
    sink = CalDavSink(transport, config, sleep=RecordingSleep())
    assert await sink.create_calendar("Contests")
    transport.requests.clear()
    harness = CalDavHarness("caldav", sink)
    harness.transport = transport
    return harness


@pytest.fixture(params=["google", "caldav"])
def harness(request: pytest.FixtureRequest) -> Harness:
    value: Harness = request.getfixturevalue(f"{request.param}_harness")
    return value


async def shown_events(harness: Harness) -> dict[tuple[str, str], Shown]:
    if isinstance(harness, CalDavHarness):
        return await harness.calendar_async()
    assert isinstance(harness, GoogleHarness)
    return harness.calendar()


def expected_events(harness: Harness) -> dict[tuple[str, str], Shown]:
    return {
        e.event_key: Shown(e.summary, e.start, e.end)
        for e in harness.desired
        if e.status == DesiredStatus.SCHEDULED
    }
