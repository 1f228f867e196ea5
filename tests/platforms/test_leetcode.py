from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.platforms.base import BROWSER_HEADERS, ParseError
from cpsync.platforms.leetcode import PLATFORM, QUERY

from .conftest import shared_file, shared_files

GRAPHQL_RECORDINGS = shared_files("leetcode", "graphql-allContests-*.json")
ALL_CONTESTS = "leetcode/graphql-allContests-2026-06-13-oiertool.json"


def _recorded_on(path: Path) -> datetime:
    match = re.search(r"\d{4}-\d{2}-\d{2}", path.stem)
    assert match is not None, "recording names carry their date"
    return datetime.fromisoformat(match.group()).replace(tzinfo=UTC)


def _graphql(**data: Any) -> bytes:
    return json.dumps({"data": data}).encode()


@pytest.mark.parametrize("path", GRAPHQL_RECORDINGS, ids=lambda path: path.stem)
def test_parses_recorded_graphql_answer(path: Path) -> None:
    items = json.loads(path.read_bytes())["data"]["allContests"]
    fetched_at = _recorded_on(path)

    result = PLATFORM.parse(path.read_bytes(), fetched_at)

    assert result.items_seen == len(items) > 100  # the whole history comes back
    assert result.skipped == []
    assert result.contests, "a recording made on its date holds upcoming contests"
    assert {c.key for c in result.contests} == {
        item["titleSlug"]
        for item in items
        if item["startTime"] + item["duration"] > fetched_at.timestamp()
    }
    for contest in result.contests:
        assert contest.url == f"https://leetcode.com/contest/{contest.key}"
        assert contest.end > fetched_at


def test_all_contests_recording_exactly() -> None:
    payload = shared_file(ALL_CONTESTS).read_bytes()

    result = PLATFORM.parse(payload, datetime(2026, 6, 14, 12, 0, tzinfo=UTC))

    assert result.items_seen == 699
    assert sorted(c.key for c in result.contests) == ["biweekly-contest-185", "weekly-contest-507"]
    weekly = next(c for c in result.contests if c.key == "weekly-contest-507")
    assert weekly.name == "Weekly Contest 507"
    assert weekly.start.timestamp() == 1782009000
    assert weekly.start == datetime(2026, 6, 21, 2, 30, tzinfo=UTC)
    assert weekly.end == datetime(2026, 6, 21, 4, 0, tzinfo=UTC)
    assert weekly.duration_seconds == 5400
    assert weekly.url == "https://leetcode.com/contest/weekly-contest-507"


def test_running_contest_stays_listed_until_it_ends() -> None:
    payload = shared_file(ALL_CONTESTS).read_bytes()

    during_biweekly = PLATFORM.parse(payload, datetime(2026, 6, 20, 15, 0, tzinfo=UTC))

    assert sorted(c.key for c in during_biweekly.contests) == [
        "biweekly-contest-185",
        "weekly-contest-507",
    ]


def test_recorder_built_wrapper_is_not_a_graphql_answer() -> None:
    path = shared_file("leetcode/past-contests-with-details-2025-07-01-leetcode-sync.json")

    with pytest.raises(ParseError, match=r"^leetcode: no `data`"):
        PLATFORM.parse(path.read_bytes(), datetime(2025, 7, 1, tzinfo=UTC))


def test_upcoming_contests_field_is_accepted_when_all_contests_is_absent() -> None:
    payload = _graphql(
        upcomingContests=[
            {
                "title": "Weekly Contest 530",
                "titleSlug": "weekly-contest-530",
                "startTime": 1796178600,
                "duration": 5400,
            },
        ]
    )

    result = PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["weekly-contest-530"]
    assert result.contests[0].start == datetime(2026, 12, 2, 2, 30, tzinfo=UTC)


def test_all_contests_wins_over_upcoming_contests() -> None:
    contest = {"title": "A", "titleSlug": "a", "startTime": 1796178600, "duration": 5400}
    payload = _graphql(allContests=[contest], upcomingContests=[{**contest, "titleSlug": "b"}])

    result = PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["a"]


def test_item_missing_a_mandatory_field_is_skipped_and_counted() -> None:
    payload = _graphql(
        allContests=[
            {"title": "No start", "titleSlug": "no-start", "duration": 5400},
            {"title": "", "titleSlug": "no-name", "startTime": 1796178600, "duration": 5400},
            {
                "title": "Fine",
                "titleSlug": "fine",
                "startTime": 1796178600,
                "duration": 5400,
                "isVirtual": False,
                "originStartTime": 1796178600,
            },
        ]
    )

    result = PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["fine"]
    assert result.items_seen == 3
    assert [reason.split(":")[0] for reason in result.skipped] == ["item 0", "item 1"]


def test_graphql_errors_without_data_are_a_parse_error() -> None:
    payload = json.dumps(
        {"data": None, "errors": [{"message": "Cannot query field 'allContests'"}]}
    ).encode()

    with pytest.raises(ParseError, match="Cannot query field 'allContests'"):
        PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))


def test_graphql_errors_beside_data_do_not_discard_the_data() -> None:
    contest = {"title": "A", "titleSlug": "a", "startTime": 1796178600, "duration": 5400}
    payload = json.dumps(
        {"data": {"allContests": [contest]}, "errors": [{"message": "partial"}]}
    ).encode()

    result = PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["a"]


@pytest.mark.parametrize(
    "payload",
    [
        b"<!DOCTYPE html><title>Just a moment...</title>",
        b"[]",
        b'{"data": {}}',
        b'{"data": {"allContests": {"title": "x"}}}',
        b'{"data": [], "errors": "boom"}',
    ],
    ids=["challenge-page", "list", "no-contest-field", "contests-not-list", "bad-shapes"],
)
def test_unreadable_payloads_raise_leetcode_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^leetcode: "):
        PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))


def test_request_is_a_graphql_post_with_browser_headers() -> None:
    request = PLATFORM.request("https://leetcode.com")

    assert request.method == "POST"
    assert request.url == "https://leetcode.com/graphql"
    assert request.json_body == {"query": QUERY}
    assert QUERY == "{ allContests { title titleSlug startTime duration } }"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Referer"] == "https://leetcode.com/contest/"
    assert request.headers.items() >= BROWSER_HEADERS.items()
