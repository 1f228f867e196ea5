"""Incremental user.status paging end to end: client, HttpClient, replay server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.codeforces_api import UserInfo
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.planner import PagingConfig, StudentPlan
from cpsync.students.sync import fetch_new_submissions, fetch_student
from tests.replay import ReplayServer, Reply, replay_server

from .conftest import recording

PAGING = PagingConfig(first_page=100, first_page_new=1000, growth=4, max_page=5000)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[CodeforcesClient, ReplayServer, list[dict[str, Any]]]]:
    items = json.loads(recording("user-status-Uakkes-300subs-2024-07.json").read_bytes())["result"]
    settings = Settings(_env_file=None, http_max_retries=0, http_min_interval_seconds=0)
    with replay_server() as server:
        async with HttpClient(settings) as http:
            config = CodeforcesClientConfig(base_url=server.base_url)
            yield CodeforcesClient(http, config), server, items


def serve_page(server: ReplayServer, items: list[dict[str, Any]], from_: int, count: int) -> None:
    page = items[from_ - 1 : from_ - 1 + count]
    body = json.dumps({"status": "OK", "result": page}).encode()
    target = f"/api/user.status?count={count}&from={from_}&handle=Uakkes"
    server.routes[("GET", target)] = [Reply(body=body)]


async def test_pages_until_the_first_stored_submission(setup: Any) -> None:
    client, server, items = setup
    newest_stored = items[150]["id"]  # the 151st newest is already stored
    serve_page(server, items, 1, 100)
    serve_page(server, items, 101, 400)

    settled = await fetch_new_submissions(client, "Uakkes", newest_stored, PAGING)

    # Page 1 (100 new), page 2 from 101: 50 new, then the stored one stops the paging.
    assert [target for _, target, _, _ in server.requests] == [
        "/api/user.status?count=100&from=1&handle=Uakkes",
        "/api/user.status?count=400&from=101&handle=Uakkes",
    ]
    assert [s.id for s in settled.final] == [item["id"] for item in items[:150]]
    assert (settled.newest_submission_id, settled.pending_verdicts) == (items[0]["id"], False)


async def test_new_student_gets_the_whole_history_in_one_page(setup: Any) -> None:
    client, server, items = setup
    serve_page(server, items, 1, 1000)  # 300 < 1000: the end of the history

    settled = await fetch_new_submissions(client, "Uakkes", None, PAGING)

    assert len(settled.final) == 300
    assert len(server.requests) == 1


async def test_nothing_new_costs_one_small_call(setup: Any) -> None:
    client, server, items = setup
    serve_page(server, items, 1, 100)

    settled = await fetch_new_submissions(client, "Uakkes", items[0]["id"], PAGING)

    assert (settled.final, settled.newest_submission_id) == ((), items[0]["id"])
    assert len(server.requests) == 1


async def test_fetch_student_makes_only_the_planned_calls(setup: Any) -> None:
    client, server, _items = setup
    info = UserInfo.model_validate(
        {"handle": "Uakkes", "lastOnlineTimeSeconds": 1, "registrationTimeSeconds": 1}
    )
    plan = StudentPlan(1, "Uakkes", info, fetch_status=False, fetch_rating=False)

    update = await fetch_student(client, plan, 5, PAGING)

    assert (update.submissions, update.ratings) == (None, None)
    assert server.requests == []


async def test_fetch_student_with_both_calls_uses_the_current_handle(setup: Any) -> None:
    client, server, items = setup
    serve_page(server, items, 1, 100)
    ratings = recording("user-rating-result-Absam-2025-05-cftracker.json").read_bytes()
    server.routes[("GET", "/api/user.rating?handle=Uakkes")] = [Reply(body=ratings)]
    info = UserInfo.model_validate(
        {"handle": "Uakkes", "lastOnlineTimeSeconds": 1, "registrationTimeSeconds": 1}
    )
    # Stored as "old_uakkes"; the plan carries the new handle from user.info.
    plan = StudentPlan(1, "Uakkes", info, fetch_status=True, fetch_rating=True,
                       previous_handle="old_uakkes")  # fmt: skip

    update = await fetch_student(client, plan, items[10]["id"], PAGING)

    assert update.submissions is not None
    assert len(update.submissions.final) == 10
    assert update.ratings is not None
    assert len(update.ratings) == 107
