from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.platforms.base import ParseError
from cpsync.platforms.geeksforgeeks import PLATFORM

from .conftest import own_file, own_files

FIXTURES = own_files("geeksforgeeks")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _events(*upcoming: dict[str, Any]) -> bytes:
    return json.dumps({"results": {"upcoming": list(upcoming), "past": []}}).encode()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_parses_fixture(path: Path) -> None:
    upcoming = json.loads(path.read_bytes())["results"]["upcoming"]

    result = PLATFORM.parse(path.read_bytes(), NOW)

    assert result.items_seen == len(upcoming)
    for contest in result.contests:
        assert contest.url == f"https://practice.geeksforgeeks.org/contest/{contest.key}"
        assert contest.start.tzinfo is UTC


def test_events_fixture_exactly() -> None:
    result = PLATFORM.parse(own_file("geeksforgeeks", "events-contest-2026-11-22.json"), NOW)

    by_key = {contest.key: contest for contest in result.contests}
    # Contest 229 ended this morning India time; the problem of the month has no start.
    assert list(by_key) == ["weekly-coding-contest-230", "job-a-thon-hiring-challenge-48"]
    assert result.items_seen == 4
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("item 3:")
    weekly = by_key["weekly-coding-contest-230"]
    # "2026-11-29T19:00:00" is 19:00 in India, 13:30 UTC.
    assert weekly.start == datetime(2026, 11, 29, 13, 30, tzinfo=UTC)
    assert weekly.end == datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    assert weekly.duration_seconds == 5400
    assert weekly.name == "GfG Weekly Coding Contest - 230"
    assert weekly.url == "https://practice.geeksforgeeks.org/contest/weekly-coding-contest-230"
    # An explicit offset is honoured, not overridden with India time.
    job_a_thon = by_key["job-a-thon-hiring-challenge-48"]
    assert job_a_thon.start == datetime(2026, 12, 13, 19, 0, tzinfo=UTC)
    assert job_a_thon.end == datetime(2026, 12, 13, 22, 0, tzinfo=UTC)


def test_past_list_is_ignored() -> None:
    payload = json.dumps(
        {
            "results": {
                "upcoming": [],
                "past": [
                    {
                        "slug": "old",
                        "name": "Old",
                        "start_time": "2026-12-01T19:00:00",
                        "end_time": "2026-12-01T20:30:00",
                    }
                ],
            }
        }
    ).encode()

    result = PLATFORM.parse(payload, NOW)

    assert result.items_seen == 0
    assert result.contests == []


def test_unparseable_time_is_skipped() -> None:
    event = {"slug": "a", "name": "A", "start_time": "Sunday 7 PM", "end_time": "Sunday 9 PM"}

    result = PLATFORM.parse(_events(event), NOW)

    assert result.contests == []
    assert len(result.skipped) == 1


@pytest.mark.parametrize(
    "payload",
    [b"Bad Gateway", b"null", b'{"detail": "Not found."}', b'{"results": {"past": []}}'],
    ids=["text", "null", "error-envelope", "no-upcoming"],
)
def test_unreadable_payloads_raise_geeksforgeeks_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^geeksforgeeks: "):
        PLATFORM.parse(payload, NOW)
