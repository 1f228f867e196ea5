"""Calendar sync cost: cpsync's planned, batched sync against the original system's approach.

N users with 40 upcoming contests each, against the local fake Google Calendar API
(tests/calendars/fake_google.py, a real HTTP server). Three moments:

  (a) first sync        every event is new
  (b) daily, no change  a day later: cpsync reads what changed in the calendar (one list
                        with a sync token) to notice edits and deletions by the user
  (c) one rescheduled   one contest moved; the fan-out syncs its users

The original system inserted one event per contest not yet in its synced list, one
request each, never updated anything, and keyed events by platform and start time: a
reschedule inserted a second event and left the old one at the wrong time.

What is measured is the sync engine and sink (`sync_calendar` + `GoogleCalendarSink`)
with each user's records kept in memory, not the database around them.

    .venv/bin/python bench/calendar_sync.py --users 250
    .venv/bin/python bench/calendar_sync.py --users 250 --json
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import importlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from cpsync.calendars.google import (
    GoogleAuth,
    GoogleCalendarSink,
    GoogleConfig,
    GoogleToken,
    build_event_body,
)
from cpsync.calendars.plan import DesiredEvent, PushedEvent, event_id
from cpsync.calendars.sync import sync_calendar
from cpsync.http import HttpClient
from cpsync.settings import Settings

# The fake lives with the tests; imported by name so the strict type check of bench/
# does not pull the (loosely typed) test modules in with it.
_fake_google: Any = importlib.import_module("tests.calendars.fake_google")
# socketserver's default listen backlog (5) resets connections under this many clients.
http.server.ThreadingHTTPServer.request_queue_size = 512
FakeGoogle: Any = _fake_google.FakeGoogle
fake_google_server: Any = _fake_google.fake_google_server

CONTESTS = 40
START = datetime(2026, 12, 1, 14, 35, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class User:
    number: int
    calendar: str
    token: GoogleToken
    records: list[PushedEvent] = field(default_factory=list)
    cursor: str | None = None
    original_synced: set[str] = field(default_factory=set)


def contests(moved: bool = False) -> list[DesiredEvent]:
    events = []
    for n in range(CONTESTS):
        start = START + timedelta(hours=7 * n)
        revision = 1
        if moved and n == 0:
            start, revision = start + timedelta(hours=2), 2
        events.append(
            DesiredEvent(
                platform="codeforces",
                key=str(2100 + n),
                revision=revision,
                summary=f"[Codeforces] Round {2100 + n}",
                description=f"Round {2100 + n}",
                url=f"https://codeforces.com/contests/{2100 + n}",
                start=start,
                end=start + timedelta(hours=2),
                reminders=(30,),
                colour="9",
            )
        )
    return events


@dataclass
class Phase:
    requests: int
    api_calls: int
    token_requests: int
    seconds: float
    stale_events: int = 0

    def as_dict(self, users: int) -> dict[str, Any]:
        return {
            "http_requests": self.requests,
            "http_requests_per_user": round(self.requests / users, 3),
            "api_calls": self.api_calls,
            "token_requests": self.token_requests,
            "wall_seconds": round(self.seconds, 3),
            "events_at_wrong_time": self.stale_events,
        }


class Bench:
    def __init__(self, fake: Any, base_url: str, http: HttpClient, users: int) -> None:
        self.fake, self.http, self.clock = fake, http, Clock()
        self.config = GoogleConfig(
            client_id="client-id",
            client_secret="client-secret",
            api_base_url=base_url,
            token_url=f"{base_url}/token",
        )
        expired = datetime(2000, 1, 1, tzinfo=UTC)
        self.ours = [self._user(n, "ours", expired) for n in range(users)]
        self.original = [self._user(n, "orig", expired) for n in range(users)]

    def _user(self, n: int, kind: str, expired: datetime) -> User:
        calendar = f"{kind}-{n}"
        self.fake.calendars[calendar] = {}
        return User(n, calendar, GoogleToken("", expired, "refresh-1"))

    async def measure(self, work: Callable[[], Awaitable[None]]) -> Phase:
        self.fake.reset_counters()
        began = time.perf_counter()
        await work()
        seconds = time.perf_counter() - began
        counts = self.fake.http_requests
        return Phase(
            requests=sum(counts.values()),
            api_calls=len(self.fake.calls),
            token_requests=counts["/token"],
            seconds=seconds,
        )

    async def each(self, users: list[User], job: Callable[[User], Awaitable[None]]) -> None:
        gate = asyncio.Semaphore(32)

        async def one(user: User) -> None:
            async with gate:
                await job(user)

        await asyncio.gather(*(one(user) for user in users))

    # -- cpsync ----------------------------------------------------------------------

    async def ours_sync(self, user: User, desired: list[DesiredEvent], check: bool) -> None:
        auth = GoogleAuth(self.http, self.config, user.token, self.clock)
        sink = GoogleCalendarSink(
            self.http, auth, self.config, user_id=user.number, calendar_id=user.calendar
        )
        run = await sync_calendar(sink, desired, user.records, user.cursor, check_remote=check)
        if run.summary.failed:
            raise RuntimeError(f"user {user.number}: {run.summary.errors[:2]}")
        user.records, user.cursor, user.token = run.records, run.cursor, auth.token

    # -- the original system -----------------------------------------------------------

    async def original_sync(self, user: User, desired: list[DesiredEvent]) -> None:
        auth = GoogleAuth(self.http, self.config, user.token, self.clock)
        for event in desired:
            # Its contest id was `platform_starttime`: a moved contest is a "new" one.
            contest_id = f"{event.platform}_{int(event.start.timestamp())}"
            if contest_id in user.original_synced:
                continue
            body = {**build_event_body(event), "id": event_id(user.number, "orig", contest_id)}
            headers = {"Authorization": await auth.authorization()}
            headers["Content-Type"] = "application/json"
            url = f"{self.config.api_base_url}/calendar/v3/calendars/{user.calendar}/events"
            answer = await self.http.send("POST", url, headers=headers, json_body=body)
            if answer.status in (200, 409):
                user.original_synced.add(contest_id)
        user.token = auth.token

    def wrong_time_events(self, users: list[User], desired: list[DesiredEvent]) -> int:
        wanted = {(e.summary, e.start.strftime("%Y-%m-%dT%H:%M:%SZ")) for e in desired}
        wrong = 0
        for user in users:
            for event in self.fake.live_events(user.calendar).values():
                if (event["summary"], event["start"]["dateTime"]) not in wanted:
                    wrong += 1
        return wrong


async def run(users: int) -> dict[str, Any]:
    fake = FakeGoogle()
    settings = Settings(
        _env_file=None,
        http_min_interval_seconds=0,
        http_timeout_seconds=60,
        http_max_retries=0,
    )
    with fake_google_server(fake) as server:
        async with HttpClient(settings) as http:
            bench = Bench(fake, server.base_url, http, users)
            return await _phases(bench, users)


async def _phases(bench: Bench, users: int) -> dict[str, Any]:
    first, moved = contests(), contests(moved=True)
    results: dict[str, dict[str, Phase]] = {}

    async def both(name: str, desired: list[DesiredEvent], check: bool) -> None:
        ours = await bench.measure(
            lambda: bench.each(bench.ours, lambda u: bench.ours_sync(u, desired, check))
        )
        original = await bench.measure(
            lambda: bench.each(bench.original, lambda u: bench.original_sync(u, desired))
        )
        ours.stale_events = bench.wrong_time_events(bench.ours, desired)
        original.stale_events = bench.wrong_time_events(bench.original, desired)
        results[name] = {"cpsync": ours, "original": original}

    await both("a_first_sync", first, check=False)
    bench.clock.now += timedelta(days=1)  # access tokens have expired by the next day
    await both("b_daily_no_change", first, check=True)
    await both("c_one_rescheduled", moved, check=False)
    return _report(results, users)


def _ratio(ours: float, original: float) -> float | None:
    return round(ours / original, 3) if original else None


def _report(results: dict[str, dict[str, Phase]], users: int) -> dict[str, Any]:
    report: dict[str, Any] = {"users": users, "contests_per_user": CONTESTS, "phases": {}}
    for name, pair in results.items():
        ours, original = pair["cpsync"], pair["original"]
        report["phases"][name] = {
            "cpsync": ours.as_dict(users),
            "original": original.as_dict(users),
            "ratio_requests_cpsync_over_original": _ratio(ours.requests, original.requests),
            "ratio_wall_cpsync_over_original": _ratio(ours.seconds, original.seconds),
        }
    return report


def _print_table(report: dict[str, Any]) -> None:
    print(f"{report['users']} users x {report['contests_per_user']} contests, fake Google API")
    header = f"{'phase':<20}{'system':<10}{'requests':>10}{'/user':>8}{'token':>8}"
    print(header + f"{'wall s':>9}{'wrong':>7}{'req ratio':>11}{'wall ratio':>11}")
    for name, phase in report["phases"].items():
        for system in ("cpsync", "original"):
            row = phase[system]
            ratios = ""
            if system == "cpsync":
                ratios = (
                    f"{phase['ratio_requests_cpsync_over_original']!s:>11}"
                    f"{phase['ratio_wall_cpsync_over_original']!s:>11}"
                )
            print(
                f"{name:<20}{system:<10}{row['http_requests']:>10}"
                f"{row['http_requests_per_user']:>8}{row['token_requests']:>8}"
                f"{row['wall_seconds']:>9}{row['events_at_wrong_time']:>7}{ratios}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=250)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = asyncio.run(run(args.users))
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)


if __name__ == "__main__":
    main()
