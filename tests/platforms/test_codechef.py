from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.platforms.base import ParseError
from cpsync.platforms.codechef import PLATFORM

from .conftest import shared_file, shared_files

RECORDINGS = shared_files("codechef", "contests-all-*.json")
CPNVIM = "codechef/contests-all-2025-10-25-cpnvim.json"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _recorded_on(path: Path) -> datetime:
    match = re.search(r"\d{4}-\d{2}-\d{2}", path.stem)
    assert match is not None, "recording names carry their date"
    return datetime.fromisoformat(match.group()).replace(tzinfo=UTC)


def _answer(**lists: list[dict[str, Any]]) -> bytes:
    return json.dumps({"status": "success", "message": "All contests list", **lists}).encode()


def _contest(code: str, start: str, end: str, duration: str | None = "120") -> dict[str, Any]:
    return {
        "contest_code": code,
        "contest_name": f"Contest {code}",
        "contest_start_date_iso": start,
        "contest_end_date_iso": end,
        "contest_duration": duration,
        "distinct_users": 0,
    }


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_parses_recorded_contest_list(path: Path) -> None:
    document = json.loads(path.read_bytes())
    listed = document["present_contests"] + document["future_contests"]

    result = PLATFORM.parse(path.read_bytes(), _recorded_on(path))

    assert result.items_seen == len(listed)
    assert result.skipped == []
    assert [c.key for c in result.contests] == [item["contest_code"] for item in listed]
    past_codes = {item["contest_code"] for item in document["past_contests"]}
    assert past_codes.isdisjoint(c.key for c in result.contests)
    for contest in result.contests:
        assert contest.url == f"https://www.codechef.com/{contest.key}"
        assert contest.start.tzinfo is UTC


def test_cpnvim_recording_exactly() -> None:
    payload = shared_file(CPNVIM).read_bytes()

    result = PLATFORM.parse(payload, datetime(2025, 10, 25, 12, 0, tzinfo=UTC))

    by_key = {contest.key: contest for contest in result.contests}
    assert list(by_key) == ["DEVWEEKEND21", "START210", "START211"]
    starters = by_key["START210"]
    assert starters.name == "Starters 210"
    assert starters.start == datetime(2025, 10, 29, 14, 30, tzinfo=UTC)
    assert starters.end == datetime(2025, 10, 29, 16, 30, tzinfo=UTC)
    assert starters.duration_seconds == 7200
    # The running weekend contest: 25 Oct 00:00 to 27 Oct 00:00 India time.
    weekend = by_key["DEVWEEKEND21"]
    assert weekend.start == datetime(2025, 10, 24, 18, 30, tzinfo=UTC)
    assert weekend.end == datetime(2025, 10, 26, 18, 30, tzinfo=UTC)
    assert weekend.duration_seconds == 2880 * 60


def test_running_contest_is_dropped_once_it_has_ended() -> None:
    payload = shared_file(CPNVIM).read_bytes()

    result = PLATFORM.parse(payload, datetime(2025, 10, 27, 0, 0, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["START210", "START211"]


def test_stated_duration_wins_over_end_minus_start() -> None:
    # A skill-test-like entry: open for weeks, but the attempt lasts 90 minutes.
    payload = _answer(
        future_contests=[
            _contest("LONGOPEN", "2026-12-01T00:00:00+05:30", "2026-12-20T00:00:00+05:30", "90")
        ]
    )

    (contest,) = PLATFORM.parse(payload, NOW).contests

    assert contest.duration_seconds == 90 * 60
    assert contest.end == datetime(2026, 12, 19, 18, 30, tzinfo=UTC)


@pytest.mark.parametrize("duration", [None, "", "two hours"], ids=["null", "empty", "words"])
def test_unreadable_duration_falls_back_to_end_minus_start(duration: str | None) -> None:
    payload = _answer(
        future_contests=[
            _contest("START270", "2026-12-02T20:00:00+05:30", "2026-12-02T22:00:00+05:30", duration)
        ]
    )

    (contest,) = PLATFORM.parse(payload, NOW).contests

    assert contest.duration_seconds == 7200
    assert contest.start == datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


def test_naive_iso_time_is_read_as_india_time() -> None:
    payload = _answer(
        future_contests=[_contest("START271", "2026-12-09T20:00:00", "2026-12-09T22:00:00")]
    )

    (contest,) = PLATFORM.parse(payload, NOW).contests

    assert contest.start == datetime(2026, 12, 9, 14, 30, tzinfo=UTC)


def test_items_missing_mandatory_fields_are_skipped_and_counted() -> None:
    good = _contest("START272", "2026-12-16T20:00:00+05:30", "2026-12-16T22:00:00+05:30")
    no_code = {key: value for key, value in good.items() if key != "contest_code"}
    bad_time = {**good, "contest_code": "BADTIME", "contest_start_date_iso": "29 Oct 2025"}
    payload = _answer(present_contests=[no_code], future_contests=[bad_time, good])

    result = PLATFORM.parse(payload, NOW)

    assert [c.key for c in result.contests] == ["START272"]
    assert result.items_seen == 3
    assert len(result.skipped) == 2


def test_failure_status_is_a_parse_error() -> None:
    payload = json.dumps({"status": "failure", "message": "Too many requests"}).encode()

    with pytest.raises(ParseError, match=r"^codechef: .*Too many requests"):
        PLATFORM.parse(payload, NOW)


@pytest.mark.parametrize(
    "payload",
    [b"<html>Access denied</html>", b'"success"', b'{"message": "x"}', b'{"status": "success"}'],
    ids=["html", "string", "no-status", "no-contest-lists"],
)
def test_unreadable_payloads_raise_codechef_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^codechef: "):
        PLATFORM.parse(payload, NOW)
