"""The cap on upcoming contests in one platform's answer (issue 14 item 4).

A Codeforces `contest.list` answer, in its real schema, served over HTTP by the replay
server into a real database: one over `max_contests_per_platform` upcoming contests is a
failed fetch that changes nothing; one at the cap is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cpsync.contests.models import Contest
from cpsync.contests.service import ContestService
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.settings import Settings
from tests.recordings import RECORDED_AT, MutableClock, codeforces_document, json_reply
from tests.replay import ReplayServer

CAP = Settings.model_fields["max_contests_per_platform"].default  # the shipped default
FIRST_ID = 3000


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(RECORDED_AT)


@pytest.fixture
async def service(
    database: Database, settings: Settings, clock: MutableClock
) -> AsyncIterator[ContestService]:
    async with HttpClient(settings) as http:
        yield ContestService(database, http, settings, clock)


def contest_list(upcoming: int, *, finished: int = 0, first_id: int = FIRST_ID) -> dict[str, Any]:
    """A contest.list answer: `upcoming` contests still to come, hours apart, after
    `finished` contests that ended before the recording (as the real list has)."""
    start = RECORDED_AT + timedelta(days=1)
    document = codeforces_document(
        *((first_id + n, f"Round {n}", start + timedelta(hours=n), 120) for n in range(upcoming))
    )
    document["result"] += [
        {
            "id": n,
            "name": f"Past round {n}",
            "type": "CF",
            "phase": "FINISHED",
            "frozen": False,
            "durationSeconds": 7200,
            "startTimeSeconds": int((RECORDED_AT - timedelta(days=n)).timestamp()),
        }
        for n in range(1, finished + 1)
    ]
    return document


async def stored_rows(database: Database) -> list[tuple[Any, ...]]:
    async with database.session() as session:
        rows = await session.scalars(select(Contest).order_by(Contest.key))
        return [
            (row.key, row.name, row.start, row.status, row.revision, row.missing_since)
            for row in rows
        ]


async def test_an_answer_over_the_cap_changes_nothing_and_health_says_why(
    service: ContestService, replay: ReplayServer, database: Database, clock: MutableClock
) -> None:
    replay.serve("codeforces", json_reply(contest_list(3)))
    (first,) = await service.refresh(["codeforces"])
    assert first.ok
    before = await stored_rows(database)
    assert len(before) == 3

    # Other contests only: were it merged, the three stored ones would be cancelled.
    flood = contest_list(CAP + 1, first_id=FIRST_ID + 100)
    replay.serve("codeforces", json_reply(flood))
    for _ in range(2):  # past the cancellation grace period
        clock.advance(timedelta(hours=4))
        (report,) = await service.refresh(["codeforces"])
        assert report.error is not None
        assert report.changes == []

    assert await stored_rows(database) == before
    health = (await service.health(["codeforces"]))["codeforces"]
    assert health.last_error == (
        f"codeforces: the response listed {CAP + 1} upcoming contests, over the limit of "
        f"{CAP} (CPSYNC_MAX_CONTESTS_PER_PLATFORM); none stored"
    )
    assert health.consecutive_failures == 2
    assert health.last_failure_at == clock.now
    assert health.last_success_at == RECORDED_AT
    assert health.contests_seen == 3


async def test_an_answer_at_the_cap_is_stored(
    service: ContestService, replay: ReplayServer, database: Database
) -> None:
    # Finished contests are listed too and never count against the cap.
    replay.serve("codeforces", json_reply(contest_list(CAP, finished=600)))
    (report,) = await service.refresh(["codeforces"])
    assert report.error is None
    assert len(report.changes) == CAP
    assert len(await stored_rows(database)) == CAP
    health = (await service.health(["codeforces"]))["codeforces"]
    assert (health.consecutive_failures, health.contests_seen) == (0, CAP)


async def test_the_cap_is_a_setting(
    database: Database, settings: Settings, clock: MutableClock, replay: ReplayServer
) -> None:
    tight = settings.model_copy(update={"max_contests_per_platform": 5})
    async with HttpClient(tight) as http:
        service = ContestService(database, http, tight, clock)
        replay.serve("codeforces", json_reply(contest_list(6)))
        (over,) = await service.refresh(["codeforces"])
        assert over.error is not None
        assert "over the limit of 5" in over.error
        replay.serve("codeforces", json_reply(contest_list(5)))
        (at_cap,) = await service.refresh(["codeforces"])
        assert at_cap.ok
    assert len(await stored_rows(database)) == 5


async def test_an_oversized_answer_is_not_read_and_changes_nothing(
    service: ContestService, replay: ReplayServer, database: Database, settings: Settings
) -> None:
    """The issue's answer: 30,000 contests in several megabytes, refused by its size."""
    replay.serve("codeforces", json_reply(contest_list(3)))
    await service.refresh(["codeforces"])
    before = await stored_rows(database)

    flood = json_reply(contest_list(30_000, first_id=FIRST_ID + 100))
    limit = settings.platform_max_response_bytes
    assert len(flood.body) > limit
    replay.serve("codeforces", flood)
    (report,) = await service.refresh(["codeforces"])

    url = f"{settings.codeforces_base_url}/api/contest.list?gym=false"
    assert report.error == f"response over {limit} bytes: {url}"
    assert await stored_rows(database) == before
    health = (await service.health(["codeforces"]))["codeforces"]
    assert (health.last_error, health.consecutive_failures) == (report.error, 1)
