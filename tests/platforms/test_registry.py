from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType

import pytest

from cpsync.errors import PermanentError
from cpsync.platforms import (
    atcoder,
    code360,
    codechef,
    codeforces,
    geeksforgeeks,
    hackerrank,
    leetcode,
)
from cpsync.platforms.base import ParseError
from cpsync.platforms.registry import PLATFORMS

from .conftest import OWN_FIXTURES, SHARED_FIXTURES

MODULES: dict[str, ModuleType] = {
    "codeforces": codeforces,
    "leetcode": leetcode,
    "codechef": codechef,
    "atcoder": atcoder,
    "hackerrank": hackerrank,
    "geeksforgeeks": geeksforgeeks,
    "code360": code360,
}
BASE_URL = "http://replay.test:8080"
# The real request of each platform, from docs/platforms.md.
EXPECTED_REQUESTS = {
    "codeforces": ("GET", "/api/contest.list?gym=false"),
    "leetcode": ("POST", "/graphql"),
    "codechef": (
        "GET",
        "/api/list/contests/all?sort_by=START&sorting_order=asc&offset=0&mode=all",
    ),
    "atcoder": ("GET", "/contests/?lang=en"),
    "hackerrank": ("GET", "/rest/contests/upcoming?limit=50&offset=0"),
    "geeksforgeeks": ("GET", "/api/vr/events/?page_number=1&sub_type=all&type=contest"),
    "code360": ("GET", "/code360/api/v3/public_section/contest_list?page=1"),
}


def test_registry_lists_every_platform_in_order() -> None:
    assert tuple(PLATFORMS) == tuple(MODULES) == tuple(EXPECTED_REQUESTS)


@pytest.mark.parametrize("name", PLATFORMS)
def test_module_name_matches_registry_entry(name: str) -> None:
    module = MODULES[name]

    assert module.NAME == name
    assert module.PLATFORM.name == name
    assert PLATFORMS[name] is module.PLATFORM


@pytest.mark.parametrize("name", PLATFORMS)
def test_an_unreadable_answer_is_a_permanent_parse_error_naming_its_platform(
    name: str,
) -> None:
    with pytest.raises(ParseError) as caught:
        PLATFORMS[name].parse(b"\x00 not a contest list", datetime(2026, 1, 1, tzinfo=UTC))

    assert caught.value.platform == name
    assert caught.value.message.startswith(f"{name}: ")
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize("name", PLATFORMS)
def test_every_platform_has_a_fixture(name: str) -> None:
    own = list((OWN_FIXTURES / name).glob("*"))
    if own:
        return
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared recordings not available")
    assert list((SHARED_FIXTURES / name).glob("*")), f"no recording or fixture for {name}"


@pytest.mark.parametrize("name", PLATFORMS)
def test_request_uses_base_url_and_real_path(name: str) -> None:
    method, path = EXPECTED_REQUESTS[name]

    request = PLATFORMS[name].request(BASE_URL)

    assert request.method == method
    assert request.url == BASE_URL + path
