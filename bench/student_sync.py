"""Student sync against a simulated Codeforces, next to the original approach.

1,000 students (configurable) with realistic histories (log-normal sizes, one student
with 10,000 submissions), synced by the real `StudentSyncService` into a SQLite file
through the real client, with the Codeforces API simulated in process (it counts calls
and answer bytes). Then a day passes, 20 % of the students are online (a few new
submissions each; some after a rated contest) and the daily sync runs.

The original approach (SkillSync) is replayed against the same simulator: per student
`user.info` + `user.rating` + `user.status?count=10000`, plus one `contest.standings`
per contest shown (first sync: every distinct contest; daily: the seventh of them whose
7-day cache expired, plus the new contest).

Times "at the limit" are calls x 2 s: Codeforces allows one call per 2 seconds, so that
is the floor of any honest client. Also measured: the profile page's server time for the
10,000-submission student (cold: stats cache dropped before each request; warm) and
the table page with 1,000 students, through the ASGI app.

    .venv/bin/python bench/student_sync.py [--students 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from argon2 import PasswordHasher
from tests.students.simulated_codeforces import (
    VERDICTS,
    SimulatedCodeforces,
    SimUser,
    catalogue,
)

from cpsync.accounts import passwords
from cpsync.accounts.models import Role
from cpsync.cache import MemoryCache
from cpsync.clock import Clock
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.settings import Settings
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.dashboard import drop_student_stats
from cpsync.students.models import Student
from cpsync.students.reminders import ReminderService
from cpsync.students.sync import StudentSyncService, SyncReport

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LIMIT_SECONDS_PER_CALL = 2.0
BASE = "http://codeforces.sim"
PROFILE_RUNS = 40
TABLE_RUNS = 40


class NullMailer:
    async def send(self, email: object) -> None:
        return None


async def no_sleep(_seconds: float) -> None:
    return None


class LazyHistory(Sequence[dict[str, Any]]):
    """A user's submissions, newest first, generated on demand (1,000 users fit in memory)."""

    def __init__(self, seed: int, handle: str, size: int, problems: list[dict[str, Any]]) -> None:
        self._seed, self._handle, self._size, self._problems = seed, handle, size, problems
        self._fresh: list[dict[str, Any]] = []  # added later, newest first
        self._start = int((NOW - timedelta(days=1500)).timestamp())
        self._span = 1499 * 86400

    def __len__(self) -> int:
        return len(self._fresh) + self._size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < len(self._fresh):
            return self._fresh[index]
        return self._old(self._size - 1 - (index - len(self._fresh)))

    def prepend(self, newest_first: list[dict[str, Any]]) -> None:
        self._fresh[:0] = newest_first

    def _old(self, i: int) -> dict[str, Any]:
        """The i-th oldest submission, the same every time it is asked for."""
        rng = random.Random(self._seed * 100_003 + i)
        at = self._start + (i * self._span) // max(1, self._size)
        return make_submission(rng, self._seed * 20_000 + i + 1, self._handle, self._problems, at)


def make_submission(
    rng: random.Random, sid: int, handle: str, problems: list[dict[str, Any]], at: int
) -> dict[str, Any]:
    problem = problems[rng.randrange(len(problems))]
    return {
        "id": sid,
        "contestId": problem["contestId"],
        "creationTimeSeconds": at,
        "relativeTimeSeconds": 2147483647,
        "problem": problem,
        "author": {
            "contestId": problem["contestId"],
            "members": [{"handle": handle}],
            "participantType": "PRACTICE",
            "ghost": False,
            "startTimeSeconds": at - 3600,
        },
        "programmingLanguage": "GNU C++17",
        "verdict": rng.choices([v for v, _ in VERDICTS], [w for _, w in VERDICTS])[0],
        "testset": "TESTS",
        "passedTestCount": rng.randint(0, 40),
        "timeConsumedMillis": rng.randint(15, 2000),
        "memoryConsumedBytes": rng.randint(0, 256) * 1048576,
    }


def history_sizes(rng: random.Random, students: int) -> list[int]:
    """Log-normal (median ~200, long tail), capped at 10,000; the first one has 10,000."""
    sizes = [min(10_000, int(rng.lognormvariate(5.3, 1.1))) for _ in range(students)]
    sizes[0] = 10_000
    return sizes


def build_world(students: int, seed: int = 42) -> tuple[SimulatedCodeforces, list[SimUser]]:
    rng = random.Random(seed)
    problems = catalogue(1500)
    sim = SimulatedCodeforces(problems=problems)
    users = []
    now = int(NOW.timestamp())
    for n, size in enumerate(history_sizes(rng, students)):
        handle = f"student_{n:04d}"
        user = SimUser(handle, registered=now - 1600 * 86400, last_online=now - 86400)
        user.submissions = LazyHistory(n + 1, handle, size, problems)  # type: ignore[assignment]
        rating = 0
        contests = sorted(rng.sample(range(1, 1400), k=min(120, max(1, size // 40))))
        for position, contest_id in enumerate(contests):
            new = max(0, rating + rng.randint(-60, 120))
            user.ratings.append(
                {
                    "contestId": contest_id,
                    "contestName": f"Codeforces Round {contest_id} (Div. 2)",
                    "handle": handle,
                    "rank": rng.randint(1, 20000),
                    "ratingUpdateTimeSeconds": now - (len(contests) - position) * 7 * 86400,
                    "oldRating": rating,
                    "newRating": new,
                }
            )
            rating = new
        sim.add(user)
        users.append(user)
    return sim, users


def a_day_passes(sim: SimulatedCodeforces, users: list[SimUser], rng: random.Random) -> int:
    """20 % online with 1-10 new submissions; a quarter of those played a rated contest."""
    later = int((NOW + timedelta(days=1)).timestamp())
    online = rng.sample(users, k=len(users) // 5)
    next_id = 900_000_000
    for user in online:
        fresh = []
        for _ in range(rng.randint(1, 10)):
            next_id += 1
            fresh.append(make_submission(rng, next_id, user.handle, sim.problems, later - 3600))
        user.submissions.prepend(list(reversed(fresh)))  # type: ignore[attr-defined]
        user.last_online = later - 600
        if rng.random() < 0.25:
            last = user.ratings[-1]["newRating"] if user.ratings else 0
            user.ratings.append(
                {
                    "contestId": 1450,
                    "contestName": "Codeforces Round 1450 (Div. 2)",
                    "handle": user.handle,
                    "rank": 100,
                    "ratingUpdateTimeSeconds": later - 7200,
                    "oldRating": last,
                    "newRating": last + 30,
                }
            )
    return len(online)


# ---------------------------------------------------------------- our sync


async def seed_students(db: Database, users: list[SimUser]) -> int:
    async with db.session() as session, session.begin():
        from cpsync.accounts.models import User

        coach = User(
            email="coach@bench.test",
            display_name="Coach",
            role=Role.COACH,
            password_hash=passwords.hash_password("bench password 1"),
            created_at=NOW - timedelta(days=400),
            updated_at=NOW,
        )
        session.add(coach)
        await session.flush()
        for user in users:
            session.add(
                Student(
                    coach_id=coach.id,
                    name=user.handle.replace("_", " ").title(),
                    email=f"{user.handle}@example.com",
                    phone="",
                    handle=user.handle,
                    handle_key=user.handle.casefold(),
                    group_name="",
                    timezone="Asia/Kolkata",
                    reminders_enabled=True,
                    created_at=NOW - timedelta(days=400),
                    updated_at=NOW,
                    pending_verdicts=False,
                    needs_full_sync=True,
                    reminders_sent=0,
                )
            )
        return int(coach.id)


async def run_sync(
    db: Database, sim: SimulatedCodeforces, settings: Settings, clock: Clock, cache: MemoryCache
) -> tuple[SyncReport, float]:
    async with HttpClient(settings, transport=sim.transport()) as http:
        client = CodeforcesClient(http, CodeforcesClientConfig(base_url=BASE), sleep=no_sleep)
        service = StudentSyncService(
            db,
            client,
            cache,
            MemoryLocks(),
            clock,
            after_sync=ReminderService(db, NullMailer(), clock),
            sleep=no_sleep,
        )
        started = time.perf_counter()
        report = await service.sync(trigger="bench")
        return report, time.perf_counter() - started


# ---------------------------------------------------------------- the original approach


async def original_sync(
    sim: SimulatedCodeforces, settings: Settings, users: list[SimUser], daily: bool
) -> None:
    """3 calls per student with 10,000 submissions each time, plus contest.standings."""
    async with HttpClient(settings, transport=sim.transport()) as http:
        contests: set[int] = set()
        for user in users:
            await http.send("GET", f"{BASE}/api/user.info?handles={user.handle}")
            await http.send("GET", f"{BASE}/api/user.rating?handle={user.handle}")
            await http.send(
                "GET", f"{BASE}/api/user.status?handle={user.handle}&from=1&count=10000"
            )
            contests.update(r["contestId"] for r in user.ratings)
        shown = sorted(contests)
        if daily:  # cached for 7 days: about a seventh expires each day, plus the new round
            shown = [*shown[: math.ceil(len(shown) / 7)], 1450]
        for contest_id in shown:
            await http.send(
                "GET", f"{BASE}/api/contest.standings?contestId={contest_id}&from=1&count=1"
            )


# ---------------------------------------------------------------- page timings


async def page_timings(settings: Settings, db: Database, profile_id: int) -> dict[str, Any]:
    from cpsync.app import create_app
    from cpsync.students.routes import build_router

    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    passwords._HASHER = hasher
    app = create_app(settings.model_copy(update={"rate_limit_requests": 10**9}))
    if not any(getattr(r, "path", "") == "/students" for r in app.routes):
        app.include_router(build_router(settings))
    async with app.router.lifespan_context(app):
        async with db.session() as session, session.begin():
            from sqlalchemy import update

            from cpsync.accounts.models import User

            await session.execute(
                update(User).values(password_hash=hasher.hash("bench password 1"))
            )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:  # noqa: TID251
            page = await http.get("/signin")
            csrf = re.search(r'name="csrf-token" content="([^"]*)"', page.text)
            assert csrf is not None
            await http.post(
                "/signin",
                data={
                    "email": "coach@bench.test",
                    "password": "bench password 1",
                    "csrf_token": csrf[1],
                },
            )
            cache = app.state.cpsync.cache

            async def timed(path: str, runs: int, cold: bool) -> list[float]:
                samples = []
                for _ in range(runs):
                    if cold:
                        await drop_student_stats(cache, profile_id)
                    started = time.perf_counter()
                    answer = await http.get(path)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                return samples

            profile = f"/students/{profile_id}?contests=all&problems=all"
            cold = await timed(profile, PROFILE_RUNS, cold=True)
            warm = await timed(profile, PROFILE_RUNS, cold=False)
            table = await timed("/students?sort=rating&order=desc", TABLE_RUNS, cold=False)
            csv_export = await timed("/students.csv", 5, cold=False)
    return {
        "profile_cold_ms": percentiles(cold),
        "profile_warm_ms": percentiles(warm),
        "table_ms": percentiles(table),
        "csv_export_ms": percentiles(csv_export),
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"p50": round(statistics.median(ordered), 1), "p99": round(p99, 1)}


# ---------------------------------------------------------------- report


def figures(calls: int, bytes_: int, wall: float | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "calls": calls,
        "bytes": bytes_,
        "time_at_limit_s": calls * LIMIT_SECONDS_PER_CALL,
    }
    if wall is not None:
        answer["local_processing_s"] = round(wall, 2)
    return answer


def ratio(original: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    return {
        key: round(original[key] / ours[key], 1) if ours[key] else math.inf
        for key in ("calls", "bytes", "time_at_limit_s")
    }


async def main_async(students: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,
            data_dir=Path(folder),
            database_url=f"sqlite+aiosqlite:///{folder}/bench.db",
            http_min_interval_seconds=0,
            http_max_response_bytes=200 * 1024 * 1024,
            refresh_interval_minutes=0,
            codeforces_base_url=BASE,
        )
        db = await open_database(settings)
        sim, users = build_world(students)
        await seed_students(db, users)
        cache = MemoryCache()

        first_report, first_wall = await run_sync(db, sim, settings, lambda: NOW, cache)
        first = figures(sim.total_calls, sim.total_bytes, first_wall)
        first["by_method"] = dict(sim.calls)

        sim.calls.clear()
        sim.bytes.clear()
        online = a_day_passes(sim, users, random.Random(7))
        later = NOW + timedelta(days=1)
        daily_report, daily_wall = await run_sync(db, sim, settings, lambda: later, cache)
        daily = figures(sim.total_calls, sim.total_bytes, daily_wall)
        daily["by_method"] = dict(sim.calls)

        sim.calls.clear()
        sim.bytes.clear()
        await original_sync(sim, settings, users, daily=False)
        original_first = figures(sim.total_calls, sim.total_bytes)
        sim.calls.clear()
        sim.bytes.clear()
        await original_sync(sim, settings, users, daily=True)
        original_daily = figures(sim.total_calls, sim.total_bytes)

        async with db.session() as session:
            from sqlalchemy import select

            profile_id = await session.scalar(
                select(Student.id).where(Student.handle_key == "student_0000")
            )
        assert profile_id is not None
        pages = await page_timings(settings, db, int(profile_id))
        await db.dispose()
    return {
        "students": students,
        "online_since_last_sync": online,
        "first_sync": {
            "cpsync": first,
            "original": original_first,
            "ratio": ratio(original_first, first),
        },
        "daily_sync": {
            "cpsync": daily,
            "original": original_daily,
            "ratio": ratio(original_daily, daily),
        },
        "sync_states": [first_report.state, daily_report.state],
        "new_submissions_daily": daily_report.counts.new_submissions,
        "pages": pages,
    }


def print_table(result: dict[str, Any]) -> None:
    online = result["online_since_last_sync"]
    print(f"students: {result['students']}, online since last sync: {online}")
    for phase in ("first_sync", "daily_sync"):
        block = result[phase]
        print(f"\n{phase.replace('_', ' ')}:")
        print(f"  {'':22}{'cpsync':>14}{'original':>16}{'ratio':>9}")
        for key, label in (
            ("calls", "calls"),
            ("bytes", "bytes"),
            ("time_at_limit_s", "time at 1 call/2 s"),
        ):
            ours, theirs = block["cpsync"][key], block["original"][key]
            print(f"  {label:22}{ours:>14,.0f}{theirs:>16,.0f}{block['ratio'][key]:>8}x")
        print(f"  cpsync calls by method: {block['cpsync']['by_method']}")
        print(f"  cpsync local processing: {block['cpsync']['local_processing_s']} s")
    pages = result["pages"]
    print("\npages (server time, ms):")
    for key, label in (
        ("profile_cold_ms", "profile, 10,000 submissions, cold"),
        ("profile_warm_ms", "profile, 10,000 submissions, warm"),
        ("table_ms", f"table, {result['students']} students"),
        ("csv_export_ms", f"CSV export, {result['students']} students"),
    ):
        print(f"  {label:40} p50 {pages[key]['p50']:>8}  p99 {pages[key]['p99']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(main_async(args.students))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
