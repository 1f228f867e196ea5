from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cpsync.platforms.base import ParseError
from cpsync.platforms.code360 import PLATFORM

from .conftest import own_file, own_files

FIXTURES = own_files("code360")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.stem)
def test_parses_fixture(path: Path) -> None:
    events = json.loads(path.read_bytes())["data"]["events"]

    result = PLATFORM.parse(path.read_bytes(), NOW)

    assert result.items_seen == len(events)
    for contest in result.contests:
        assert contest.url == f"https://www.naukri.com/code360/contests/{contest.key}"
        assert contest.end > NOW


def test_contest_list_fixture_exactly() -> None:
    result = PLATFORM.parse(own_file("code360", "contest-list-page1-2026-11-22.json"), NOW)

    by_key = {contest.key: contest for contest in result.contests}
    # The hiring sprint has no slug (skipped); weekly contest 158 is over.
    assert list(by_key) == ["weekly-contest-160", "biweekly-contest-80"]
    assert result.items_seen == 4
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("item 2:")
    weekly = by_key["weekly-contest-160"]
    # Registration opened on 2026-11-20; the contest itself starts on the 29th.
    assert weekly.start == datetime(2026, 11, 29, 14, 30, tzinfo=UTC)
    assert weekly.end == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert weekly.duration_seconds == 5400
    assert weekly.name == "Weekly Contest 160"
    assert weekly.url == "https://www.naukri.com/code360/contests/weekly-contest-160"
    assert by_key["biweekly-contest-80"].start == datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>Naukri - maintenance</html>",
        b"[]",
        b'{"data": null, "error": {"message": "Something went wrong"}}',
        b'{"data": {"total_pages": 0}}',
    ],
    ids=["html", "list", "error-envelope", "no-events"],
)
def test_unreadable_payloads_raise_code360_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^code360: "):
        PLATFORM.parse(payload, NOW)
