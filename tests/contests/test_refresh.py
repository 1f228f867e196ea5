"""Refreshing contests end to end: replayed recordings over HTTP into a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cpsync.contests.merge import ChangeKind
from cpsync.contests.models import Contest
from cpsync.contests.service import ContestService
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings
from tests.recordings import (
    RECORDED_AT,
    MutableClock,
    codeforces_document,
    expected_contests,
    json_reply,
    recording_reply,
    serve_all,
)
from tests.replay import ReplayServer, Reply

pytestmark = pytest.mark.usefixtures("shared_fixtures")


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(RECORDED_AT)


@pytest.fixture
async def service(
    database: Database, settings: Settings, clock: MutableClock
) -> AsyncIterator[ContestService]:
    async with HttpClient(settings) as http:
        yield ContestService(database, http, settings, clock)


async def all_rows(database: Database) -> list[dict[str, Any]]:
    async with database.session() as session:
        rows = await session.scalars(select(Contest).order_by(Contest.platform, Contest.key))
        return [
            {column.key: getattr(row, column.key) for column in Contest.__table__.columns}
            for row in rows
        ]


async def test_refresh_stores_every_platform(service: ContestService, replay: ReplayServer) -> None:
    serve_all(replay)
    reports = await service.refresh()
    assert {r.platform: r.error for r in reports} == dict.fromkeys(PLATFORMS)
    stored = await service.upcoming()
    expected = {(p, c.key) for p in PLATFORMS for c in expected_contests(p)}
    assert {(c.platform, c.key) for c in stored} == expected
    assert all(c.start.tzinfo is UTC and c.revision == 1 for c in stored)
    health = await service.health()
    assert all(health[p].last_success_at == RECORDED_AT for p in PLATFORMS)


async def test_second_refresh_changes_nothing(
    service: ContestService, replay: ReplayServer
) -> None:
    serve_all(replay)
    await service.refresh()
    reports = await service.refresh()
    for report in reports:
        assert report.changes == []
        assert report.unchanged == len(expected_contests(report.platform))


async def test_times_are_exact_after_a_round_trip(
    service: ContestService, replay: ReplayServer
) -> None:
    serve_all(replay)
    await service.refresh()
    by_key = {(c.platform, c.key): c for c in await service.upcoming()}
    # Checked by hand against the recordings.
    assert by_key["codeforces", "2028"].start == datetime(2024, 11, 10, 15, 35, tzinfo=UTC)
    assert by_key["atcoder", "abc462"].start == datetime(2026, 6, 13, 12, 0, tzinfo=UTC)
    assert by_key["atcoder", "abc462"].duration_seconds == 100 * 60
    assert by_key["codechef", "START210"].start == datetime(2025, 10, 29, 14, 30, tzinfo=UTC)
    assert by_key["leetcode", "weekly-contest-507"].start == datetime.fromtimestamp(1782009000, UTC)


FAULTS: dict[str, Reply] = {
    "http-500": Reply(500, b"Internal Server Error"),
    "http-429-retry-after": Reply(429, b"slow down", headers={"Retry-After": "1"}),
    "timeout": Reply(200, b"{}", delay=1.0),
    "html-error-page-200": Reply(
        200,
        b"<html><body><h1>Codeforces is temporarily unavailable</h1></body></html>",
        headers={"Content-Type": "text/html"},
    ),
    "truncated-json": Reply(200, b'{"status":"OK","result":[{"id":2028,"name":"Codeforces Ro'),
    "empty-list": json_reply({"status": "OK", "result": []}),
    "changed-schema": json_reply(
        {"status": "OK", "result": [{"contestId": 1, "title": "x", "begins": 1}] * 3}
    ),
    "api-failed": json_reply({"status": "FAILED", "comment": "Call limit exceeded"}),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_upstream_fault_changes_nothing_stored(
    service: ContestService,
    replay: ReplayServer,
    database: Database,
    clock: MutableClock,
    fault: str,
) -> None:
    serve_all(replay)
    await service.refresh()
    before = await all_rows(database)
    replay.serve("codeforces", FAULTS[fault])
    for _ in range(2):  # twice, past the grace period: nothing may be cancelled
        clock.advance(timedelta(hours=4))
        reports = {r.platform: r for r in await service.refresh()}
        assert reports["codeforces"].error
        assert all(reports[p].ok for p in PLATFORMS if p != "codeforces")
    after = await all_rows(database)
    codeforces_rows = [r for r in after if r["platform"] == "codeforces"]
    assert codeforces_rows == [r for r in before if r["platform"] == "codeforces"]
    health = (await service.health())["codeforces"]
    assert health.consecutive_failures == 2
    assert health.last_failure_at == clock.now
    assert health.last_success_at == RECORDED_AT
    assert health.last_error


async def test_reschedule_updates_the_same_row(
    service: ContestService, replay: ReplayServer, clock: MutableClock
) -> None:
    start = RECORDED_AT + timedelta(days=3)
    replay.serve("codeforces", json_reply(codeforces_document((2100, "Round A", start, 120))))
    await service.refresh(["codeforces"])
    (before,) = await service.upcoming(["codeforces"])
    moved = start + timedelta(hours=5)
    replay.serve("codeforces", json_reply(codeforces_document((2100, "Round A", moved, 150))))
    clock.advance(timedelta(hours=1))
    (report,) = await service.refresh(["codeforces"])
    assert report.changes == [("2100", ChangeKind.RESCHEDULED)]
    (after,) = await service.upcoming(["codeforces"])
    assert (after.id, after.start, after.duration_seconds, after.revision) == (
        before.id,
        moved,
        150 * 60,
        2,
    )
    assert after.first_seen_at == RECORDED_AT
    assert after.updated_at == clock.now


async def test_same_second_contests_are_both_kept(
    service: ContestService, replay: ReplayServer
) -> None:
    start = RECORDED_AT + timedelta(days=2)
    document = codeforces_document((2101, "Div. 1", start, 120), (2102, "Div. 2", start, 120))
    replay.serve("codeforces", json_reply(document))
    await service.refresh(["codeforces"])
    assert [c.name for c in await service.upcoming(["codeforces"])] == ["Div. 1", "Div. 2"]


async def test_cancellation_after_grace_and_reappearance(
    service: ContestService, replay: ReplayServer, clock: MutableClock
) -> None:
    start = RECORDED_AT + timedelta(days=5)
    both = codeforces_document((2201, "Stays", start, 120), (2202, "Vanishes", start, 120))
    one = codeforces_document((2201, "Stays", start, 120))
    replay.serve("codeforces", json_reply(both))
    await service.refresh(["codeforces"])

    replay.serve("codeforces", json_reply(one))
    for hours in (1, 1, 0.9):  # first missing at +1 h, then missing for 1.9 h: within grace
        clock.advance(timedelta(hours=hours))
        (report,) = await service.refresh(["codeforces"])
        assert report.changes == []
    assert len(await service.upcoming(["codeforces"])) == 2

    clock.advance(timedelta(hours=1.1))  # missing for exactly the 3-hour grace
    (report,) = await service.refresh(["codeforces"])
    assert report.changes == [("2202", ChangeKind.CANCELLED)]
    assert [c.key for c in await service.upcoming(["codeforces"])] == ["2201"]
    everything = await service.upcoming(["codeforces"], include_cancelled=True)
    cancelled = next(c for c in everything if c.key == "2202")
    assert (cancelled.status, cancelled.revision) == ("cancelled", 2)

    replay.serve("codeforces", json_reply(both))
    clock.advance(timedelta(hours=1))
    (report,) = await service.refresh(["codeforces"])
    assert report.changes == [("2202", ChangeKind.RESTORED)]
    restored = next(c for c in await service.upcoming(["codeforces"]) if c.key == "2202")
    assert (restored.status, restored.revision) == ("scheduled", 3)


async def test_ended_contests_are_kept_then_pruned_after_retention(
    service: ContestService, replay: ReplayServer, clock: MutableClock, database: Database
) -> None:
    start = RECORDED_AT + timedelta(days=1)
    replay.serve("codeforces", json_reply(codeforces_document((2301, "Old", start, 60))))
    await service.refresh(["codeforces"])
    replay.serve(
        "codeforces",
        json_reply(codeforces_document((2302, "Later", start + timedelta(days=200), 60))),
    )

    clock.now = start + timedelta(days=89)
    await service.refresh(["codeforces"])
    assert {r["key"] for r in await all_rows(database)} == {"2301", "2302"}
    assert [c.key for c in await service.upcoming(["codeforces"])] == ["2302"]

    clock.now = start + timedelta(days=91)
    await service.refresh(["codeforces"])
    assert {r["key"] for r in await all_rows(database)} == {"2302"}


async def test_within_window_and_platform_filter(
    service: ContestService, replay: ReplayServer
) -> None:
    serve_all(replay)
    await service.refresh()
    soon = await service.upcoming(["leetcode", "atcoder"], within=timedelta(days=30))
    assert soon
    assert all(c.platform in {"leetcode", "atcoder"} for c in soon)
    assert all(c.start < RECORDED_AT + timedelta(days=30) for c in soon)
    assert [c.start for c in soon] == sorted(c.start for c in soon)


def test_recordings_exist(shared_fixtures: Path) -> None:
    assert recording_reply("codeforces").body
