"""Whatever bytes arrive, a parser returns a result or raises its own ParseError."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpsync.platforms.base import ParseError, ParseResult
from cpsync.platforms.registry import PLATFORMS

FETCHED_AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=200, deadline=None, database=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=30)
)


def _json(max_leaves: int) -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


json_values = _json(max_leaves=20)
# Smaller values inside items keep the envelope tests fast without losing variety.
small_json = _json(max_leaves=6)
# Hostile values for any field: wrong types, out-of-range and platform-breaking times.
edge_timestamps = st.sampled_from(
    [-(2**63), -62_135_596_801, 253_402_300_800, 67_768_036_191_676_800, 2**63, 10**20]
)
iso_times = (st.datetimes() | st.datetimes(timezones=st.timezones())).map(datetime.isoformat)
hostile = st.one_of(
    small_json,
    edge_timestamps,
    edge_timestamps.map(str),
    iso_times,
    st.sampled_from(["", " ", "-5", "01:40", "BEFORE"]),
)
# Plausible values by kind, so that many items get through validation into the time
# arithmetic and the end-after-fetch filter.
NEAR = (datetime(2026, 10, 1), datetime(2027, 3, 1))  # naive bounds, as hypothesis wants
near_times = st.datetimes(*NEAR) | st.datetimes(*NEAR, timezones=st.timezones())
slugs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
plausible: dict[str, st.SearchStrategy[Any]] = {
    "key": slugs,
    "id": st.integers(min_value=1, max_value=3000),
    "name": st.text(min_size=1, max_size=20),
    "epoch": st.integers(min_value=1_790_000_000, max_value=1_800_000_000),
    "iso": near_times.map(datetime.isoformat),
    "seconds": st.integers(min_value=0, max_value=10**6),
    "minutes": st.integers(min_value=0, max_value=10**4).map(str),
    "phase": st.sampled_from(["BEFORE", "CODING", "FINISHED"]),
}
FIELDS: dict[str, dict[str, str]] = {
    "codeforces": {
        "id": "id",
        "name": "name",
        "phase": "phase",
        "durationSeconds": "seconds",
        "startTimeSeconds": "epoch",
    },
    "leetcode": {"title": "name", "titleSlug": "key", "startTime": "epoch", "duration": "seconds"},
    "codechef": {
        "contest_code": "key",
        "contest_name": "name",
        "contest_start_date_iso": "iso",
        "contest_end_date_iso": "iso",
        "contest_duration": "minutes",
    },
    "hackerrank": {
        "slug": "key",
        "name": "name",
        "epoch_starttime": "epoch",
        "epoch_endtime": "epoch",
    },
    "geeksforgeeks": {"slug": "key", "name": "name", "start_time": "iso", "end_time": "iso"},
    "code360": {
        "slug": "key",
        "name": "name",
        "event_start_time": "epoch",
        "event_end_time": "epoch",
    },
}
ENVELOPES: dict[str, Callable[[list[Any]], Any]] = {
    "codeforces": lambda items: {"status": "OK", "result": items},
    "leetcode": lambda items: {"data": {"allContests": items}},
    "codechef": lambda items: {
        "status": "success",
        "present_contests": [],
        "future_contests": items,
    },
    "hackerrank": lambda items: {"models": items, "total": len(items)},
    "geeksforgeeks": lambda items: {"results": {"upcoming": items, "past": []}},
    "code360": lambda items: {"data": {"events": items, "total_pages": 1}},
}
JSON_PLATFORMS = tuple(ENVELOPES)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Not `good | bad`: hypothesis flattens nested one_of, so bad's many branches would win.
    return st.integers(min_value=0, max_value=4).flatmap(lambda roll: bad if roll == 0 else good)


def _items(name: str) -> st.SearchStrategy[list[Any]]:
    typed = {field: _mostly(plausible[kind], hostile) for field, kind in FIELDS[name].items()}
    complete = st.fixed_dictionaries(typed)
    partial = st.fixed_dictionaries({}, optional=typed)
    return st.lists(complete | complete | partial | small_json, max_size=5)


jst_times = st.datetimes(*NEAR).map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S+0900"))
durations = st.from_regex(r"\A[0-9]{1,3}:[0-5][0-9]\Z")
atcoder_cells = st.tuples(
    _mostly(jst_times, hostile.map(str)),
    _mostly(slugs.map(lambda slug: f"/contests/{slug}"), st.text(max_size=20)),
    st.text(max_size=20),
    _mostly(durations, st.from_regex(r"\A[0-9]{1,30}:[0-9]{2}\Z") | st.text(max_size=8)),
)
atcoder_rows = st.lists(atcoder_cells, max_size=5)


def _atcoder_page(rows: list[tuple[str, str, str, str]], escape: bool) -> bytes:
    quote = html.escape if escape else str
    body = "".join(
        f"<tr><td><time>{quote(start)}</time></td>"
        f'<td><span>Ⓐ</span><a href="{quote(href)}">{quote(name)}</a></td>'
        f"<td>{quote(duration)}</td></tr>"
        for start, href, name, duration in rows
    )
    return (
        '<html><body><div id="contest-table-upcoming"><table><tbody>'
        f"{body}</tbody></table></div></body></html>"
    ).encode("utf-8", errors="surrogatepass")


def _parse_or_error(name: str, payload: bytes) -> ParseResult | ParseError:
    try:
        return PLATFORMS[name].parse(payload, FETCHED_AT)
    except ParseError as exc:
        return exc


def _check(name: str, payload: bytes) -> None:
    result = _parse_or_error(name, payload)
    if isinstance(result, ParseError):
        assert result.platform == name
        assert result.message.startswith(f"{name}: ")
        return
    assert isinstance(result, ParseResult)
    assert len(result.contests) + len(result.skipped) <= result.items_seen
    for contest in result.contests:
        assert contest.platform == name
        assert contest.start.tzinfo is UTC
        assert contest.end > FETCHED_AT
        assert contest.key
        assert contest.name


@pytest.mark.parametrize("name", PLATFORMS)
@FUZZ
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes(name: str, payload: bytes) -> None:
    _check(name, payload)


@pytest.mark.parametrize("name", PLATFORMS)
@FUZZ
@given(document=json_values)
def test_arbitrary_json(name: str, document: Any) -> None:
    _check(name, json.dumps(document).encode())


@pytest.mark.parametrize("name", JSON_PLATFORMS)
@FUZZ
@given(data=st.data())
def test_right_envelope_with_random_items(name: str, data: st.DataObject) -> None:
    items = data.draw(_items(name))

    _check(name, json.dumps(ENVELOPES[name](items)).encode())


@FUZZ
@given(rows=atcoder_rows, escape=st.booleans())
def test_atcoder_table_with_random_rows(
    rows: list[tuple[str, str, str, str]], escape: bool
) -> None:
    _check("atcoder", _atcoder_page(rows, escape))


@pytest.mark.parametrize("name", PLATFORMS)
def test_deeply_nested_json_is_a_parse_error_not_a_recursion_error(name: str) -> None:
    with pytest.raises(ParseError):
        PLATFORMS[name].parse(b"[" * 100_000 + b"]" * 100_000, FETCHED_AT)


@pytest.mark.parametrize("name", JSON_PLATFORMS)
@pytest.mark.parametrize(
    "timestamp",
    [-(2**63), 253_402_300_800, 67_768_036_191_676_800, 2**63],
    ids=["min-int64", "year-10000", "eoverflow", "max-int64"],
)
def test_out_of_range_times_skip_the_item(name: str, timestamp: int) -> None:
    as_iso = {"iso": f"{timestamp}-01-01T00:00:00", "minutes": str(timestamp)}
    item = {
        field: timestamp if kind in {"epoch", "seconds"} else as_iso.get(kind, "x1")
        for field, kind in FIELDS[name].items()
    }
    item.update({"phase": "BEFORE", "id": 1} if name == "codeforces" else {})

    result = PLATFORMS[name].parse(json.dumps(ENVELOPES[name]([item])).encode(), FETCHED_AT)

    assert result.contests == []
    assert len(result.skipped) == 1
