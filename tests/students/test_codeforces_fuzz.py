"""Whatever arrives, the parsers return models or raise a CodeforcesError, nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpsync.http import HttpResponse, PermanentUpstreamError, RetriableUpstreamError, UpstreamError
from cpsync.students.codeforces_api import (
    CodeforcesError,
    CodeforcesRetriableError,
    handle_batches,
    parse_problem_catalogue,
    parse_rating_changes,
    parse_submissions,
    parse_user_infos,
    unique_handles,
    user_info_url,
)
from cpsync.students.codeforces_client import answer_result, upstream_error

FUZZ = settings(max_examples=50, deadline=None, database=None)
PARSERS: dict[str, Callable[[bytes], Any]] = {
    "user.info": parse_user_infos,
    "user.rating": parse_rating_changes,
    "user.status": parse_submissions,
    "problemset.problems": parse_problem_catalogue,
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
hostile = json_values | st.sampled_from(
    [-(2**63), 2**63, 10**20, 253_402_300_800, "", "OK", "TESTING"]
)
seconds = st.integers(min_value=0, max_value=2_000_000_000)
problem = st.fixed_dictionaries(
    {"index": st.sampled_from(["A", "B1", ""]) | hostile, "name": st.text(max_size=10) | hostile},
    optional={
        "contestId": st.integers(1, 200_000) | hostile,
        "rating": st.integers(800, 3500) | hostile,
    },
)
# Plausible items by call, with any field possibly replaced or dropped.
ITEMS: dict[str, st.SearchStrategy[Any]] = {
    "user.info": st.fixed_dictionaries(
        {"handle": st.text(min_size=1, max_size=10) | hostile,
         "lastOnlineTimeSeconds": seconds | hostile, "registrationTimeSeconds": seconds | hostile},
        optional={"rating": st.integers(0, 4000) | hostile, "rank": st.text(max_size=8) | hostile},
    ),
    "user.rating": st.fixed_dictionaries(
        {"contestId": st.integers(1, 3000) | hostile, "contestName": st.text(max_size=10) | hostile,
         "handle": st.text(max_size=10), "rank": st.integers(1, 30_000) | hostile,
         "oldRating": st.integers(0, 4000) | hostile, "newRating": st.integers(0, 4000) | hostile,
         "ratingUpdateTimeSeconds": seconds | hostile},
    ),
    "user.status": st.fixed_dictionaries(
        {"id": st.integers(1, 10**9) | hostile, "creationTimeSeconds": seconds | hostile,
         "problem": problem | hostile,
         "author": st.fixed_dictionaries({}, optional={"members": st.lists(
             st.fixed_dictionaries({"handle": st.text(max_size=8)}), max_size=3) | hostile,
             "teamId": st.integers() | hostile})},
        optional={"verdict": st.sampled_from(["OK", "TESTING", "WRONG_ANSWER"]) | hostile},
    ),
    "problemset.problems": problem,
}  # fmt: skip


def _envelope(call: str, items: list[Any]) -> Any:
    if call == "problemset.problems":
        return {"status": "OK", "result": {"problems": items, "problemStatistics": []}}
    return {"status": "OK", "result": items}


def _check(call: str, payload: bytes) -> bool:
    """True when the payload parsed; a CodeforcesError is the only other way out."""
    try:
        PARSERS[call](payload)
    except CodeforcesError as exc:
        message = exc.message
    else:
        return True
    assert message.startswith("codeforces:")
    return False


@pytest.mark.parametrize("call", PARSERS)
@FUZZ
@given(payload=st.binary(max_size=200))
def test_arbitrary_bytes(call: str, payload: bytes) -> None:
    _check(call, payload)


@pytest.mark.parametrize("call", PARSERS)
@FUZZ
@given(document=json_values)
def test_arbitrary_json(call: str, document: Any) -> None:
    _check(call, json.dumps(document).encode())


@pytest.mark.parametrize("call", PARSERS)
@FUZZ
@given(comment=json_values)
def test_failed_envelope_with_any_comment(call: str, comment: Any) -> None:
    payload = json.dumps({"status": "FAILED", "comment": comment}).encode()
    with pytest.raises(CodeforcesError):
        PARSERS[call](payload)


@pytest.mark.parametrize("call", PARSERS)
@FUZZ
@given(data=st.data())
def test_right_envelope_with_random_items(call: str, data: st.DataObject) -> None:
    items = data.draw(st.lists(ITEMS[call] | json_values, max_size=4))
    _check(call, json.dumps(_envelope(call, items)).encode())


bodies = st.binary(max_size=100) | json_values.map(lambda value: json.dumps(value).encode())
failed_bodies = json_values.map(
    lambda comment: json.dumps({"status": "FAILED", "comment": comment})
)


@FUZZ
@given(
    body=bodies | failed_bodies.map(str.encode),
    status=st.sampled_from([200, 400, 403, 404, 429, 500, 503]),
    retry_after=st.none() | st.sampled_from(["7", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
def test_any_answer_is_a_result_or_a_codeforces_error(
    body: bytes, status: int, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    outcome: object
    try:
        outcome = answer_result(HttpResponse(status, headers, body))
    except CodeforcesError as exc:
        outcome = exc
    if isinstance(outcome, CodeforcesRetriableError):
        assert outcome.retry_after >= 0
    elif not isinstance(outcome, CodeforcesError):
        assert status == 200
    if status >= 500:
        # Without a FAILED comment (which may name a bad handle), a 5xx is always retriable.
        with pytest.raises(CodeforcesRetriableError):
            answer_result(HttpResponse(status, headers, b"<html>"))


@FUZZ
@given(body=bodies, status=st.sampled_from([400, 404, 429, 500, 503]))
def test_any_http_error_becomes_a_codeforces_error(body: bytes, status: int) -> None:
    error: UpstreamError
    if status == 429 or status >= 500:
        error = RetriableUpstreamError("x", upstream_status=status, body=body)
    else:
        error = PermanentUpstreamError("x", upstream_status=status, body=body)
    assert isinstance(upstream_error(error), CodeforcesError)


@FUZZ
@given(
    handles=st.lists(st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=24), max_size=200),
    limit=st.integers(min_value=60, max_value=2000),
)
def test_handle_batches_respect_the_url_limit_and_keep_order(
    handles: list[str], limit: int
) -> None:
    base = "https://codeforces.com"
    unique = unique_handles(handles)
    batches = list(handle_batches(base, unique, limit))
    assert [handle for batch in batches for handle in batch] == unique
    for batch in batches:
        assert batch
        assert len(batch) == 1 or len(user_info_url(base, batch)) <= limit


@pytest.mark.parametrize("call", PARSERS)
def test_plausible_items_do_get_through(call: str) -> None:
    """Guards the fuzzing above: its plausible items must often be valid, or it tests little."""
    parsed = 0

    @settings(max_examples=40, deadline=None, database=None)
    @given(items=st.lists(ITEMS[call], min_size=1, max_size=2))
    def run(items: list[Any]) -> None:
        nonlocal parsed
        parsed += _check(call, json.dumps(_envelope(call, items)).encode())

    run()
    assert parsed > 0
