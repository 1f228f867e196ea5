"""Keys and URLs are checked at the parser edge: an unsafe one makes that item malformed
(skipped and counted) while the rest of the answer is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cpsync.platforms.base import ParsedContest, make_contest
from cpsync.platforms.registry import PLATFORMS

from .conftest import own_file

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
START = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
END = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
HEADER_INJECTION = "x\r\nX-Evil: 1"


def test_hackerrank_slug_with_crlf_is_skipped_and_counted() -> None:
    document = json.loads(own_file("hackerrank", "contests-upcoming-2026-11-22.json"))
    winter = next(m for m in document["models"] if m["slug"] == "winter-codesprint-2026")
    winter["slug"] = HEADER_INJECTION

    result = PLATFORMS["hackerrank"].parse(json.dumps(document).encode(), NOW)

    assert [c.key for c in result.contests] == [
        "ai-hiring-challenge-nov-2026",
        "university-codesprint-7",
    ]
    assert result.items_seen == 5
    # ProjectEuler+ (no end time) as before, and now the injected slug.
    assert len(result.skipped) == 2
    (reason,) = [r for r in result.skipped if "unsafe key" in r]
    assert reason.startswith("item 1: ")
    # The reason is stored and logged: it must stay on one line.
    assert "\r" not in reason
    assert "\n" not in reason


def _json_item(platform: str, key: str) -> dict[str, Any]:
    start, end = int(START.timestamp()), int(END.timestamp())
    if platform == "leetcode":
        return {"title": "Weekly", "titleSlug": key, "startTime": start, "duration": 5400}
    if platform == "codechef":
        return {
            "contest_code": key,
            "contest_name": "Starters",
            "contest_start_date_iso": START.isoformat(),
            "contest_end_date_iso": END.isoformat(),
            "contest_duration": "120",
        }
    if platform == "hackerrank":
        return {"slug": key, "name": "Sprint", "epoch_starttime": start, "epoch_endtime": end}
    if platform == "geeksforgeeks":
        naive = "%Y-%m-%dT%H:%M:%S"
        return {
            "slug": key,
            "name": "Weekly",
            "start_time": START.strftime(naive),
            "end_time": END.strftime(naive),
        }
    return {"slug": key, "name": "Weekly", "event_start_time": start, "event_end_time": end}


def _json_payload(platform: str, items: list[dict[str, Any]]) -> bytes:
    envelopes: dict[str, Any] = {
        "leetcode": {"data": {"allContests": items}},
        "codechef": {"status": "success", "present_contests": [], "future_contests": items},
        "hackerrank": {"models": items},
        "geeksforgeeks": {"results": {"upcoming": items}},
        "code360": {"data": {"events": items}},
    }
    return json.dumps(envelopes[platform]).encode()


def _atcoder_payload(slugs: list[str]) -> bytes:
    rows = "".join(
        f"<tr><td><time>{START.isoformat(sep=' ')}</time></td>"
        f'<td><a href="/contests/{slug}">Beginner Contest</a></td><td>01:40</td></tr>'
        for slug in slugs
    )
    table = f"<table><tbody>{rows}</tbody></table>"
    return f'<div id="contest-table-upcoming">{table}</div>'.encode()


# Codeforces keys are integers by schema: no string can reach them.
SLUG_PLATFORMS = ["leetcode", "codechef", "hackerrank", "geeksforgeeks", "code360"]
BAD_KEYS = [HEADER_INJECTION, "two words", "tab\tkey", 'quote"key', "slash/key", "ключ", "é"]


@pytest.mark.parametrize("platform", SLUG_PLATFORMS)
@pytest.mark.parametrize("bad_key", BAD_KEYS, ids=repr)
def test_unsafe_key_skips_only_that_item(platform: str, bad_key: str) -> None:
    payload = _json_payload(platform, [_json_item(platform, bad_key), _json_item(platform, "ok-1")])

    result = PLATFORMS[platform].parse(payload, NOW)

    assert [c.key for c in result.contests] == ["ok-1"]
    assert result.items_seen == 2
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("item 0: ")


def test_atcoder_link_with_encoded_crlf_is_skipped() -> None:
    result = PLATFORMS["atcoder"].parse(_atcoder_payload(["abc%0D%0AX-Evil", "abc450"]), NOW)

    assert [c.key for c in result.contests] == ["abc450"]
    assert len(result.skipped) == 1
    assert "unsafe key" in result.skipped[0]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/x\r\nX-Evil: 1",
        "https://example.org/a b",
        "https://example.org/\x00",
        "javascript:alert(1)",
        "ftp://example.org/contest",
        "//example.org/contest",
        "/contests/1",
        "https:///no-host",
        "https://exämple.org/",
    ],
    ids=repr,
)
def test_url_that_is_not_an_absolute_web_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="url"):
        make_contest("hackerrank", key="k", name="N", url=url, start=START, end=END)


def test_contests_cannot_be_built_around_the_check() -> None:
    with pytest.raises(ValueError, match="unsafe key"):
        ParsedContest("hackerrank", HEADER_INJECTION, "N", "https://a.example/", START, END, 60)


def test_control_characters_in_names_become_spaces() -> None:
    contest = make_contest(
        "hackerrank",
        key="k",
        name="Round\x001\r\nDiv.\x7f2 \ud800",
        url="https://www.hackerrank.com/contests/k?ref=a&b=%20",
        start=START,
        end=END,
    )

    assert contest.name == "Round 1 Div. 2"
