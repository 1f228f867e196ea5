from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cpsync.platforms.base import BROWSER_HEADERS, ParseError
from cpsync.platforms.hackerrank import PLATFORM

from .conftest import own_file, own_files

FIXTURES = own_files("hackerrank")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_parses_fixture(path: Path) -> None:
    models = json.loads(path.read_bytes())["models"]

    result = PLATFORM.parse(path.read_bytes(), NOW)

    assert result.items_seen == len(models)
    assert len(result.contests) + len(result.skipped) <= result.items_seen
    for contest in result.contests:
        assert contest.url == f"https://www.hackerrank.com/contests/{contest.key}"
        assert contest.end > NOW


def test_upcoming_fixture_exactly() -> None:
    result = PLATFORM.parse(own_file("hackerrank", "contests-upcoming-2026-11-22.json"), NOW)

    by_key = {contest.key: contest for contest in result.contests}
    # The running hiring challenge stays; the ended Halloween Hack goes; ProjectEuler+
    # (no end time) is skipped and counted.
    assert list(by_key) == [
        "ai-hiring-challenge-nov-2026",
        "winter-codesprint-2026",
        "university-codesprint-7",
    ]
    assert result.items_seen == 5
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("item 3:")
    running = by_key["ai-hiring-challenge-nov-2026"]
    assert running.start == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert running.end == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    sprint = by_key["winter-codesprint-2026"]
    assert sprint.name == "HackerRank Winter CodeSprint 2026"
    assert sprint.start == datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    assert sprint.end == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    assert sprint.duration_seconds == 2 * 24 * 3600
    assert sprint.url == "https://www.hackerrank.com/contests/winter-codesprint-2026"
    assert by_key["university-codesprint-7"].start == datetime(2027, 1, 16, 14, 0, tzinfo=UTC)


def test_end_before_start_is_skipped() -> None:
    payload = json.dumps(
        {
            "models": [
                {
                    "slug": "x",
                    "name": "X",
                    "epoch_starttime": 1796486400,
                    "epoch_endtime": 1796400000,
                }
            ],
            "total": 1,
        }
    ).encode()

    result = PLATFORM.parse(payload, NOW)

    assert result.contests == []
    assert len(result.skipped) == 1


@pytest.mark.parametrize(
    "payload",
    [
        b"<html><body>Something went wrong</body></html>",
        b"[]",
        b'{"status": false, "errors": ["Invalid request"]}',
        b'{"models": null, "total": 0}',
    ],
    ids=["html", "list", "error-envelope", "models-null"],
)
def test_unreadable_payloads_raise_hackerrank_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^hackerrank: "):
        PLATFORM.parse(payload, NOW)


def test_request_uses_browser_headers() -> None:
    request = PLATFORM.request("https://www.hackerrank.com")

    assert request.url == "https://www.hackerrank.com/rest/contests/upcoming?limit=50&offset=0"
    assert request.headers == BROWSER_HEADERS
