"""What the profile page and the API show, computed from stored rows and cached.

Every figure comes from the database (pages never call Codeforces). A computed view is
cached per student, section and period as JSON, for as long as the data behind it is
trusted without a sync (rating history 6 h, submissions 2 h); a sync of that student
drops its views at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.cache import Cache, CacheError
from cpsync.clock import Clock
from cpsync.students.models import Student
from cpsync.students.repository import StudentRepository
from cpsync.students.stats import (
    CONTEST_PERIODS,
    PROBLEM_PERIODS,
    ContestEntry,
    ProblemStats,
    SolveBook,
    build_solve_book,
    contest_history,
    problem_stats,
)

CONTESTS_TTL_SECONDS = 6 * 3600.0
PROBLEMS_TTL_SECONDS = 2 * 3600.0
VIEW_VERSION = "v1"


def _key(student_id: int, section: str, days: int | None) -> str:
    return f"students:{VIEW_VERSION}:{student_id}:{section}:{days or 'all'}"


async def drop_student_stats(cache: Cache, student_id: int) -> None:
    for days in CONTEST_PERIODS:
        await cache.delete(_key(student_id, "contests", days))
    for days in PROBLEM_PERIODS:
        await cache.delete(_key(student_id, "problems", days))


def student_zone(student: Student) -> tzinfo:
    try:
        return ZoneInfo(student.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@dataclass(frozen=True, slots=True)
class PeriodChoice:
    days: int | None  # None: all time
    asked: str | None = None  # set when the value asked for is not offered


def choose_period(
    value: str | None, allowed: tuple[int | None, ...], default: int | None
) -> PeriodChoice:
    """A page's period filter: the default when absent, and when the value is not one we
    offer (so the page can say so instead of silently showing something else)."""
    if value is None:
        return PeriodChoice(default)
    if value in ("", "all"):
        return PeriodChoice(None)
    if value.isascii() and value.isdigit() and int(value) in allowed:
        return PeriodChoice(int(value))
    return PeriodChoice(default, asked=value)


def parse_period(value: str | int | None, allowed: tuple[int | None, ...]) -> int | None:
    """A period from a query string; anything unknown means "all"."""
    if value is None or value in ("", "all"):
        return None
    try:
        days = int(value)
    except (TypeError, ValueError):
        return None
    return days if days in allowed else None


@dataclass(slots=True)
class _Rows:
    book: SolveBook
    submissions: list[Any]
    ratings: list[Any]
    catalogue: dict[int, Any]


class DashboardService:
    def __init__(self, session: AsyncSession, cache: Cache, clock: Clock) -> None:
        self._repository = StudentRepository(session)
        self._cache = cache
        self._clock = clock
        self._rows: dict[int, _Rows] = {}

    async def contests(self, student: Student, days: int | None) -> dict[str, Any]:
        return await self._cached(
            _key(student.id, "contests", days),
            CONTESTS_TTL_SECONDS,
            lambda: self._contests(student, days),
        )

    async def problems(self, student: Student, days: int | None) -> dict[str, Any]:
        return await self._cached(
            _key(student.id, "problems", days),
            PROBLEMS_TTL_SECONDS,
            lambda: self._problems(student, days),
        )

    async def _cached(self, key: str, ttl: float, compute: Any) -> dict[str, Any]:
        try:
            hit = await self._cache.get(key)
        except CacheError:
            hit = None  # a cache outage slows pages down, it does not break them
        if hit is not None:
            cached: dict[str, Any] = json.loads(hit)
            return cached
        view: dict[str, Any] = await compute()
        try:
            await self._cache.set(key, json.dumps(view).encode(), ttl)
        except CacheError:
            pass
        return view

    async def _load(self, student_id: int) -> _Rows:
        if student_id not in self._rows:
            submissions = await self._repository.submission_rows(student_id)
            ratings = await self._repository.rating_rows(student_id)
            contest_ids = {r.contest_id for r in ratings}
            contest_ids |= {s.contest_id for s in submissions if s.contest_id is not None}
            catalogue = await self._repository.catalogue_for(contest_ids)
            book = build_solve_book(submissions, catalogue)
            self._rows[student_id] = _Rows(book, submissions, ratings, catalogue)
        return self._rows[student_id]

    async def _contests(self, student: Student, days: int | None) -> dict[str, Any]:
        rows = await self._load(student.id)
        entries = contest_history(
            rows.ratings, rows.book, rows.catalogue, now=self._clock(), days=days
        )
        return {"days": days, "contests": [contest_view(entry) for entry in entries]}

    async def _problems(self, student: Student, days: int | None) -> dict[str, Any]:
        rows = await self._load(student.id)
        zone = student_zone(student)
        stats = problem_stats(rows.submissions, rows.book, now=self._clock(), days=days, zone=zone)
        return {"days": days, "timezone": str(zone), **problem_view(stats)}


def contest_view(entry: ContestEntry) -> dict[str, Any]:
    return {
        "contest_id": entry.contest_id,
        "contest_name": entry.contest_name,
        "date": entry.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rank": entry.rank,
        "old_rating": entry.old_rating,
        "new_rating": entry.new_rating,
        "rating_change": entry.rating_change,
        "problems_total": entry.problems_total,
        "unsolved": list(entry.unsolved) if entry.unsolved is not None else None,
        "unsolved_count": entry.unsolved_count,
        "url": f"https://codeforces.com/contest/{entry.contest_id}",
    }


def problem_view(stats: ProblemStats) -> dict[str, Any]:
    hardest = stats.hardest
    return {
        "solved": stats.solved,
        "hardest": None
        if hardest is None
        else {
            "name": hardest.name,
            "rating": hardest.rating,
            "contest_id": hardest.contest_id,
            "index": hardest.index,
            "url": hardest.url,
        },
        "average_rating": round(stats.average_rating, 1)
        if stats.average_rating is not None
        else None,
        "average_per_day": round(stats.average_per_day, 3),
        "buckets": [{"rating": floor, "solved": count} for floor, count in stats.rating_buckets],
        "unrated": stats.unrated,
        "heatmap": [
            {"day": day.day.isoformat(), "submissions": day.submissions, "accepted": day.accepted}
            for day in stats.heatmap
        ],
    }
