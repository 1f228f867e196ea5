"""The calendar filter: pure, evaluated in the user's zone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpsync.accounts.preferences import Filters, PatternError, check_pattern, matches

KOLKATA = ZoneInfo("Asia/Kolkata")
ALL = ("codeforces", "leetcode", "atcoder")


@dataclass(frozen=True)
class FakeContest:
    platform: str
    name: str
    start: datetime
    duration_seconds: int


def contest(
    name: str = "Codeforces Round 1000 (Div. 2)",
    platform: str = "codeforces",
    start: datetime = datetime(2024, 10, 10, 14, 35, tzinfo=UTC),  # Thu 20:05 in Kolkata
    hours: float = 2,
) -> FakeContest:
    return FakeContest(platform, name, start, int(hours * 3600))


def test_platforms_must_be_listed() -> None:
    assert matches(contest(), Filters(platforms=ALL), UTC)
    assert not matches(contest(platform="codechef"), Filters(platforms=ALL), UTC)
    assert not matches(contest(), Filters(platforms=()), UTC)


def test_max_duration_is_inclusive() -> None:
    assert matches(contest(hours=2), Filters(platforms=ALL, max_duration_hours=2), UTC)
    assert not matches(contest(hours=2.01), Filters(platforms=ALL, max_duration_hours=2), UTC)


def test_exclude_pattern_is_case_insensitive_search() -> None:
    filters = Filters(platforms=ALL, exclude_pattern=r"div\. ?1\b")
    assert not matches(contest("Codeforces Round (DIV. 1)"), filters, UTC)
    assert matches(contest("Codeforces Round (Div. 2)"), filters, UTC)


def test_hours_are_read_in_the_users_zone() -> None:
    evening = Filters(platforms=ALL, hour_from=18, hour_to=22)
    # 14:35 UTC is 20:05 in Kolkata.
    assert matches(contest(), evening, KOLKATA)
    assert not matches(contest(), evening, UTC)


def test_hour_window_wraps_midnight_and_end_is_exclusive() -> None:
    night = Filters(platforms=ALL, hour_from=22, hour_to=6)
    at = lambda h, m=0: contest(start=datetime(2024, 10, 10, h, m, tzinfo=UTC))  # noqa: E731
    assert matches(at(23), night, UTC)
    assert matches(at(0), night, UTC)
    assert matches(at(5, 59), night, UTC)
    assert not matches(at(6), night, UTC)
    assert not matches(at(21, 59), night, UTC)


def test_weekdays_follow_the_zone_across_midnight() -> None:
    # Friday 20:30 UTC is Saturday 02:00 in Kolkata.
    late = contest(start=datetime(2024, 10, 11, 20, 30, tzinfo=UTC))
    saturday = Filters(platforms=ALL, weekdays=(5,))
    assert matches(late, saturday, KOLKATA)
    assert not matches(late, saturday, UTC)
    assert matches(late, Filters(platforms=ALL, weekdays=()), UTC)


@given(
    start=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    hour_from=st.integers(0, 23),
    span=st.integers(1, 23),
)
def test_a_window_and_its_complement_split_every_start(
    start: datetime, hour_from: int, span: int
) -> None:
    hour_to = (hour_from + span) % 24
    inside = Filters(platforms=ALL, hour_from=hour_from, hour_to=hour_to)
    outside = Filters(platforms=ALL, hour_from=hour_to, hour_to=hour_from)
    item = contest(start=start)
    assert matches(item, inside, KOLKATA) != matches(item, outside, KOLKATA)


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=div)", "(?<!x)y", "(", "a{1001}", "x" * 201])
def test_unsupported_or_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        check_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    ["", "div\\. 1", "^(ABC|ARC)", "unrated|kotlin", "heuristic.*contest", "a{1,5}b", "(a+)+$"],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern)


# Patterns that send a backtracking engine into polynomial or exponential time. Under
# Python's `re` the first took hours on this 50-character title (five `.*` took ~1 s).
HOSTILE = [".*" * 10 + "=", "(a+)+$", "(x|xy)+z", r"(\w+\s?)+$"]


def test_hostile_patterns_match_in_linear_time() -> None:
    """Run in a child with a CPU-time limit: a backtracking engine is killed by the limit
    (minutes of work against it), a linear one finishes in microseconds. The limit is a
    guard against hanging the suite, not a speed measurement."""
    script = textwrap.dedent(
        f"""
        import resource
        from datetime import UTC, datetime
        from types import SimpleNamespace
        from cpsync.accounts.preferences import Filters, matches
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        title = "a" * 49 + "!"
        for pattern in {HOSTILE!r}:
            contest = SimpleNamespace(
                platform="codeforces", name=title, start=datetime(2024, 1, 1, tzinfo=UTC),
                duration_seconds=7200,
            )
            assert matches(contest, Filters(("codeforces",), exclude_pattern=pattern), UTC)
        print("ok")
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "ok"


def test_a_stored_pattern_re2_cannot_compile_excludes_nothing() -> None:
    """Saved before RE2 (a look-ahead Python's engine accepted): the feed still renders."""
    filters = Filters(platforms=ALL, exclude_pattern="(?=Codeforces)")
    assert matches(contest(), filters, UTC)


def test_filters_combine() -> None:
    filters = Filters(
        platforms=("codeforces",),
        max_duration_hours=3,
        exclude_pattern="div. 1",
        hour_from=18,
        hour_to=23,
        weekdays=(3,),
    )
    assert matches(contest(), filters, KOLKATA)
    assert not matches(contest(start=contest().start + timedelta(days=1)), filters, KOLKATA)
