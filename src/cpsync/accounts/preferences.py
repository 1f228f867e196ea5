"""Which contests a user's calendar shows. Pure: no database, no clock.

`matches(contest, preferences, zone)` is the one filter used by the "My calendar" preview,
the ICS feed and (later) calendar sync. Rules:

- `platforms`: the contest's platform must be listed (an empty list shows nothing).
- `max_duration_hours`: longer contests are left out; None means no limit.
- `exclude_pattern`: a case-insensitive regular expression; titles it finds are left out.
- `hour_from`/`hour_to`: the start, in the user's zone, must fall in `[from, to)`; a window
  with `from > to` wraps midnight (22 → 6). Both None means any hour.
- `weekdays` (0 = Monday .. 6 = Sunday), in the user's zone; an empty list means any day.

Titles are matched by RE2 (google-re2), whose time is linear in the title's length for
every pattern, so no stored pattern can make one user's feed, preview or calendar sync
spin: Python's backtracking engine took seconds on five adjacent `.*` and hung on ten.
RE2 has no look-arounds or back-references; `check_pattern` refuses those (and anything
longer than MAX_PATTERN_LENGTH) before a pattern is stored. A pattern stored before this
rule that RE2 cannot compile excludes nothing rather than failing the whole feed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Protocol

import re2

log = logging.getLogger(__name__)

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


class _TitlePattern(Protocol):
    def search(self, text: str) -> object | None: ...


def matches(contest: ContestLike, filters: Filters, zone: tzinfo) -> bool:
    if contest.platform not in filters.platforms:
        return False
    if filters.max_duration_hours is not None and (
        contest.duration_seconds > filters.max_duration_hours * 3600
    ):
        return False
    if filters.exclude_pattern and _excludes(filters.exclude_pattern, contest.name):
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


def _excludes(pattern: str, name: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(name) is not None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> _TitlePattern | None:
    try:
        return _compile(pattern)
    except PatternError as exc:
        log.warning("ignoring a stored title filter RE2 cannot use: %s", exc)
        return None


def _compile(pattern: str) -> _TitlePattern:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"at most {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    # A compiled program is bounded too: RE2 refuses patterns whose automaton would need more.
    options.max_mem = _MAX_PROGRAM_BYTES
    try:
        compiled: _TitlePattern = re2.compile(pattern, options=options)
        return compiled
    except re2.error as exc:
        raise PatternError(_explain(exc)) from exc


_MAX_PROGRAM_BYTES = 1 << 20


def _explain(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    if "perl operator" in text or "escape sequence" in text:
        return f"look-arounds and back-references are not supported ({text})"
    return f"not a valid regular expression: {text}"


def check_pattern(pattern: str) -> None:
    """Raise PatternError when the pattern is too long or RE2 cannot compile it."""
    _compile(pattern)


def clean_reminders(values: Sequence[int]) -> list[int]:
    """Distinct offsets in minutes, soonest-before-start last (largest first)."""
    return sorted(set(values), reverse=True)
