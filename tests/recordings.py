"""Which recorded response stands in for each platform in end-to-end tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cpsync.platforms.base import ParsedContest
from cpsync.platforms.registry import PLATFORMS
from tests.replay import ReplayServer, Reply

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
OWN = Path(__file__).resolve().parent / "fixtures"

# Every recording below lists contests still to come at this moment.
RECORDED_AT = datetime(2024, 10, 10, 13, 0, tzinfo=UTC)

RECORDINGS: dict[str, tuple[Path, str]] = {
    "codeforces": (
        SHARED / "codeforces/contest-list-before-only-2024-10-10-codemate.json",
        "application/json",
    ),
    "leetcode": (
        SHARED / "leetcode/graphql-allContests-2026-06-13-oiertool.json",
        "application/json",
    ),
    "codechef": (SHARED / "codechef/contests-all-2025-10-25-cpnvim.json", "application/json"),
    "atcoder": (
        SHARED / "atcoder/contests-page-en-upcoming-2026-06-13-oiertool.html",
        "text/html; charset=utf-8",
    ),
    "hackerrank": (OWN / "hackerrank/contests-upcoming-2026-11-22.json", "application/json"),
    "geeksforgeeks": (OWN / "geeksforgeeks/events-contest-2026-11-22.json", "application/json"),
    "code360": (OWN / "code360/contest-list-page1-2026-11-22.json", "application/json"),
}


def recorded_file(platform: str) -> tuple[Path, str]:
    """The platform's recording and its content type, or a clean skip when the shared
    recordings (kept beside the repository, never in it) are not there."""
    path, content_type = RECORDINGS[platform]
    if not path.is_file():
        pytest.skip(f"recording {path.name} not available (is {SHARED} present?)")
    return path, content_type


def recording_reply(platform: str) -> Reply:
    return Reply.file(*recorded_file(platform))


def serve_all(replay: ReplayServer, delay: float = 0.0) -> None:
    for platform in PLATFORMS:
        reply = recording_reply(platform)
        reply.delay = delay
        replay.serve(platform, reply)


def expected_contests(platform: str, at: datetime = RECORDED_AT) -> list[ParsedContest]:
    path, _ = recorded_file(platform)
    return PLATFORMS[platform].parse(path.read_bytes(), at).contests


def json_reply(document: Any) -> Reply:
    return Reply(body=json.dumps(document).encode(), headers={"Content-Type": "application/json"})


def codeforces_document(*contests: tuple[int, str, datetime, int]) -> dict[str, Any]:
    """A contest.list answer with these (id, name, start, minutes) upcoming contests."""
    return {
        "status": "OK",
        "result": [
            {
                "id": contest_id,
                "name": name,
                "type": "CF",
                "phase": "BEFORE",
                "frozen": False,
                "durationSeconds": minutes * 60,
                "startTimeSeconds": int(start.timestamp()),
                "relativeTimeSeconds": -3600,
            }
            for contest_id, name, start, minutes in contests
        ],
    }


class MutableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
