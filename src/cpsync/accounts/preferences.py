"""Which contests a user's calendar shows. Pure: no database, no clock.

`matches(contest, preferences, zone)` is the one filter used by the "My calendar" preview,
the ICS feed and (later) calendar sync. Rules:

- `platforms`: the contest's platform must be listed (an empty list shows nothing).
- `max_duration_hours`: longer contests are left out; None means no limit.
- `exclude_pattern`: a case-insensitive regular expression; titles it finds are left out.
- `hour_from`/`hour_to`: the start, in the user's zone, must fall in `[from, to)`; a window
  with `from > to` wraps midnight (22 → 6). Both None means any hour.
- `weekdays` (0 = Monday .. 6 = Sunday), in the user's zone; an empty list means any day.

`check_pattern` guards the regular expression before it is stored: a length cap, a compile
check, and no nested unbounded repetition or back-references, which are what make Python's
backtracking engine take exponential time.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # type: ignore[import-not-found]  # stdlib parser, to inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, Protocol

MAX_PATTERN_LENGTH = 200
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 4 * 7 * 24 * 60

# Google Calendar's event colours: (id, name, hex).
COLORS: list[tuple[str, str, str]] = [
    ("1", "Lavender", "#7986cb"),
    ("2", "Sage", "#33b679"),
    ("3", "Grape", "#8e24aa"),
    ("4", "Flamingo", "#e67c73"),
    ("5", "Banana", "#f6bf26"),
    ("6", "Tangerine", "#f4511e"),
    ("7", "Peacock", "#039be5"),
    ("8", "Graphite", "#616161"),
    ("9", "Blueberry", "#3f51b5"),
    ("10", "Basil", "#0b8043"),
    ("11", "Tomato", "#d50000"),
]
COLOR_IDS = frozenset(color_id for color_id, _, _ in COLORS)


class ContestLike(Protocol):
    @property
    def platform(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def duration_seconds(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Filters:
    platforms: Sequence[str]
    max_duration_hours: float | None = None
    exclude_pattern: str = ""
    hour_from: int | None = None
    hour_to: int | None = None
    weekdays: Sequence[int] = field(default_factory=tuple)


class PatternError(ValueError):
    pass


def matches(contest: ContestLike, filters: Filters, zone: tzinfo) -> bool:
    if contest.platform not in filters.platforms:
        return False
    if filters.max_duration_hours is not None and (
        contest.duration_seconds > filters.max_duration_hours * 3600
    ):
        return False
    if filters.exclude_pattern and _compiled(filters.exclude_pattern).search(contest.name):
        return False
    local = contest.start.astimezone(zone)
    if filters.weekdays and local.weekday() not in filters.weekdays:
        return False
    return _in_hours(local.hour, filters.hour_from, filters.hour_to)


def _in_hours(hour: int, start: int | None, end: int | None) -> bool:
    if start is None or end is None:
        return True
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    check_pattern(pattern)
    return re.compile(pattern, re.IGNORECASE)


def check_pattern(pattern: str) -> None:
    """Raise PatternError when the pattern is too long, invalid, or could backtrack forever."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"at most {MAX_PATTERN_LENGTH} characters")
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise PatternError(f"not a valid regular expression: {exc.msg}") from exc
    _check_nodes(list(parsed), inside_repeat=False)


_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}


def _check_nodes(nodes: list[tuple[Any, Any]], *, inside_repeat: bool) -> None:
    for opcode, argument in nodes:
        if opcode in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            raise PatternError("back-references are not allowed")
        if opcode in _REPEATS:
            _low, high, body = argument
            unbounded = high == sre_parse.MAXREPEAT or high > 100
            if inside_repeat and unbounded:
                raise PatternError("nested repetition like (a+)+ is not allowed")
            _check_body(list(body), inside_repeat=inside_repeat or unbounded)
        elif opcode == sre_parse.SUBPATTERN:
            _check_body(list(argument[-1]), inside_repeat=inside_repeat)
        elif opcode == sre_parse.BRANCH:
            if inside_repeat:
                raise PatternError("repeated alternatives like (a|b)+ are not allowed")
            for branch in argument[1]:
                _check_body(list(branch), inside_repeat=inside_repeat)
        elif opcode in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            _check_body(list(argument[1]), inside_repeat=inside_repeat)
        elif opcode == sre_parse.ATOMIC_GROUP:
            _check_body(list(argument), inside_repeat=inside_repeat)


def _check_body(nodes: list[tuple[Any, Any]], *, inside_repeat: bool) -> None:
    _check_nodes(nodes, inside_repeat=inside_repeat)


def clean_reminders(values: Sequence[int]) -> list[int]:
    """Distinct offsets in minutes, soonest-before-start last (largest first)."""
    return sorted(set(values), reverse=True)
