from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.platforms.base import ParseError
from cpsync.platforms.codeforces import PLATFORM

from .conftest import shared_file, shared_files

CONTEST_LISTS = shared_files("codeforces", "contest-list-*.json")
CASSETTES = shared_files("codeforces", "vcr-contest-list-*.yml")
FAILED_ENVELOPES = shared_files("codeforces", "api-FAILED-*.json")
_CASSETTE_BODY = re.compile(r"response:.*?base64_string: \|\n((?:[ ]+[A-Za-z0-9+/=]+\n)+)", re.S)


def _cassette_body(path: Path) -> bytes:
    """The response body of a VCR cassette, without needing a YAML parser."""
    match = _CASSETTE_BODY.search(path.read_text())
    assert match is not None, "cassette has no base64 response body"
    return base64.b64decode("".join(match.group(1).split()))


def _items(payload: bytes) -> list[dict[str, Any]]:
    document = json.loads(payload)
    return document if isinstance(document, list) else document["result"]


def _recorded_at(items: list[dict[str, Any]]) -> datetime:
    """The recorder's clock: relativeTimeSeconds is "now - start" at recording time."""
    dated = next(item for item in items if "startTimeSeconds" in item)
    moment = dated["startTimeSeconds"] + dated["relativeTimeSeconds"]
    return datetime.fromtimestamp(moment, UTC)


def _check_recording(payload: bytes) -> None:
    items = _items(payload)
    fetched_at = _recorded_at(items)

    result = PLATFORM.parse(payload, fetched_at)

    assert result.items_seen == len(items)
    assert result.skipped == []
    # Every recording's BEFORE contests start after it was made; nothing else is listed.
    assert {c.key for c in result.contests} == {
        str(item["id"]) for item in items if item["phase"] == "BEFORE"
    }
    for contest in result.contests:
        assert contest.platform == "codeforces"
        assert contest.url == f"https://codeforces.com/contests/{contest.key}"
        assert contest.start.tzinfo is UTC
        assert contest.start > fetched_at
        assert (contest.end - contest.start).total_seconds() == contest.duration_seconds


@pytest.mark.parametrize("path", CONTEST_LISTS, ids=lambda path: path.stem)
def test_parses_recorded_contest_list(path: Path) -> None:
    _check_recording(path.read_bytes())


@pytest.mark.parametrize("path", CASSETTES, ids=lambda path: path.stem)
def test_parses_contest_list_inside_vcr_cassette(path: Path) -> None:
    _check_recording(_cassette_body(path))


@pytest.mark.parametrize("path", FAILED_ENVELOPES, ids=lambda path: path.stem)
def test_failed_envelope_is_a_parse_error_carrying_the_comment(path: Path) -> None:
    comment = json.loads(path.read_bytes())["comment"]

    with pytest.raises(ParseError, match="FAILED") as caught:
        PLATFORM.parse(path.read_bytes(), datetime(2019, 8, 1, tzinfo=UTC))

    assert comment in caught.value.message
    assert caught.value.message.startswith("codeforces:")


def test_codemate_before_only_recording_exactly() -> None:
    payload = shared_file(
        "codeforces/contest-list-before-only-2024-10-10-codemate.json"
    ).read_bytes()

    result = PLATFORM.parse(payload, datetime(2024, 10, 10, 12, 0, tzinfo=UTC))

    assert result.items_seen == 9
    assert len(result.contests) == 9
    by_key = {contest.key: contest for contest in result.contests}
    round_2028 = by_key["2028"]
    assert round_2028.name == "Codeforces Round (Div. 2)"
    assert round_2028.start == datetime(2024, 11, 10, 15, 35, tzinfo=UTC)
    assert round_2028.end == datetime(2024, 11, 10, 17, 35, tzinfo=UTC)
    assert round_2028.duration_seconds == 7200
    assert round_2028.url == "https://codeforces.com/contests/2028"
    # Div. 1 and Div. 2 start at the same second and must stay two contests.
    assert by_key["2023"].start == by_key["2024"].start == datetime(2024, 10, 20, 9, 5, tzinfo=UTC)


def test_two_week_ioi_contest_keeps_its_duration() -> None:
    payload = shared_file("codeforces/contest-list-2023-10-17-smallshawn95.json").read_bytes()

    result = PLATFORM.parse(payload, datetime(2023, 10, 17, tzinfo=UTC))

    challenge = next(c for c in result.contests if c.key == "1885")
    assert challenge.name == "2023 ICPC Post-World Finals Challenge powered by Huawei"
    assert challenge.start == datetime(2023, 11, 20, 7, 0, tzinfo=UTC)
    assert challenge.end == datetime(2023, 12, 4, 7, 0, tzinfo=UTC)
    assert challenge.duration_seconds == 14 * 24 * 3600


def test_running_contest_is_listed_and_undated_one_is_not() -> None:
    payload = json.dumps(
        {
            "status": "OK",
            "result": [
                {
                    "id": 1,
                    "name": "Running",
                    "phase": "CODING",
                    "durationSeconds": 7200,
                    "startTimeSeconds": 1795334400,
                },
                {"id": 2, "name": "Announced", "phase": "BEFORE", "durationSeconds": 7200},
                {"id": 3, "name": "Broken", "phase": "BEFORE"},
            ],
        }
    ).encode()

    result = PLATFORM.parse(payload, datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    assert [c.key for c in result.contests] == ["1"]
    assert result.contests[0].start == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert result.items_seen == 3
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("item 2:")


@pytest.mark.parametrize(
    "payload",
    [b"<html>", b"\xff\xfe\x00", b"42", b'{"status": "OK", "result": {}}', b"[" * 100_000],
    ids=["html", "not-utf8", "number", "result-not-list", "deeply-nested"],
)
def test_unreadable_payloads_raise_codeforces_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^codeforces: "):
        PLATFORM.parse(payload, datetime(2026, 11, 22, tzinfo=UTC))
