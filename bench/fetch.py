"""Contest fetch and merge benchmark.

1. All seven platforms from the local replay server, each answer delayed by --delay
   seconds: fetched concurrently (as `cpsync fetch` does) versus one after another.
2. Merging 1,000 contests into SQLite and into PostgreSQL: first insert, an unchanged
   re-merge, and a re-merge with 100 reschedules.

Run: .venv/bin/python bench/fetch.py [--delay 0.15] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

# The replay server and the recordings' catalogue live with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.recordings import RECORDED_AT, MutableClock, serve_all
from tests.replay import replay_server

from cpsync.contests.merge import plan_merge
from cpsync.contests.repository import ContestRepository
from cpsync.contests.service import ContestService
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.platforms.base import ParsedContest
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def time_fetch(settings: Settings, concurrent: bool) -> float:
    db = await open_database(settings)
    try:
        async with HttpClient(settings) as http:
            service = ContestService(db, http, settings, MutableClock(RECORDED_AT))
            started = time.perf_counter()
            if concurrent:
                reports = await service.refresh(list(PLATFORMS))
            else:
                reports = [r for name in PLATFORMS for r in await service.refresh([name])]
            elapsed = time.perf_counter() - started
    finally:
        await db.dispose()
    failed = [r.platform for r in reports if not r.ok]
    if failed:
        raise SystemExit(f"fetch failed for {failed}: is ../shared/fixtures beside the repo?")
    return elapsed


def synthetic_contests(
    count: int, shift: timedelta = timedelta(0), moved: int = 0
) -> list[ParsedContest]:
    base = datetime(2027, 1, 1, tzinfo=UTC)
    contests = []
    for i in range(count):
        start = base + timedelta(hours=i) + (shift if i < moved else timedelta(0))
        contests.append(
            ParsedContest(
                "codeforces",
                str(10_000 + i),
                f"Round {i}",
                f"https://codeforces.com/contests/{10_000 + i}",
                start,
                start + timedelta(hours=2),
                7200,
            )
        )
    return contests


async def merge_once(db: Database, contests: list[ParsedContest], now: datetime) -> float:
    started = time.perf_counter()
    async with db.session() as session, session.begin():
        repository = ContestRepository(session)
        stored = await repository.stored_for_merge("codeforces")
        plan = plan_merge(stored, contests, now, timedelta(hours=3))
        await repository.apply_merge("codeforces", plan, now)
    return time.perf_counter() - started


async def time_merges(url: str, count: int) -> dict[str, float]:
    db = await open_database(Settings.model_validate({"database_url": url}))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        return {
            "insert_ms": 1000 * await merge_once(db, synthetic_contests(count), now),
            "unchanged_ms": 1000 * await merge_once(db, synthetic_contests(count), now),
            "reschedule_100_ms": 1000
            * await merge_once(db, synthetic_contests(count, timedelta(hours=1), moved=100), now),
        }
    finally:
        await db.dispose()


async def with_postgres_database(count: int) -> dict[str, float] | None:
    name = f"cpsync_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL unavailable, skipped: {exc}", file=sys.stderr)
        return None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        return await time_merges(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", count)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(delay: float, rounds: int, count: int) -> dict[str, Any]:
    concurrent: list[float] = []
    sequential: list[float] = []
    with tempfile.TemporaryDirectory() as folder, replay_server() as replay:
        serve_all(replay, delay=delay)
        for i in range(rounds):
            for mode, bucket in ((True, concurrent), (False, sequential)):
                settings = Settings.model_validate(
                    {
                        "database_url": f"sqlite+aiosqlite:///{folder}/fetch-{i}-{mode}.db",
                        "http_min_interval_seconds": 0,
                        **replay.base_url_env(),
                    }
                )
                bucket.append(await time_fetch(settings, concurrent=mode))
        sqlite = await time_merges(f"sqlite+aiosqlite:///{folder}/merge.db", count)
    postgres = await with_postgres_database(count)
    concurrent_s, sequential_s = statistics.median(concurrent), statistics.median(sequential)
    return {
        "platforms": len(PLATFORMS),
        "delay_per_response_s": delay,
        "rounds": rounds,
        "fetch_concurrent_s": round(concurrent_s, 3),
        "fetch_sequential_s": round(sequential_s, 3),
        "sequential_over_concurrent": round(sequential_s / concurrent_s, 2),
        "merge_contests": count,
        "merge_sqlite_ms": {k: round(v, 1) for k, v in sqlite.items()},
        "merge_postgresql_ms": {k: round(v, 1) for k, v in postgres.items()} if postgres else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contests", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(run(args.delay, args.rounds, args.contests))
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"fetch of {figures['platforms']} platforms, {args.delay * 1000:.0f} ms per response "
        f"(median of {args.rounds}):"
    )
    print(f"  concurrent  {figures['fetch_concurrent_s']:.3f} s")
    print(f"  sequential  {figures['fetch_sequential_s']:.3f} s")
    print(f"  ratio       {figures['sequential_over_concurrent']}x faster concurrently")
    for label in ("sqlite", "postgresql"):
        merge = figures[f"merge_{label}_ms"]
        if merge:
            print(
                f"merge of {args.contests} contests into {label}: "
                + ", ".join(f"{k} {v}" for k, v in merge.items())
            )


if __name__ == "__main__":
    main()
