"""What the profile page and the API show, computed from stored rows and cached.

Every figure comes from the database (pages never call Codeforces). A computed view is
cached per student, section and period as JSON, for as long as the data behind it is
trusted without a sync (rating history 6 h, submissions 2 h); a sync of that student
drops its views at once. Below that, the pure page-shaped data the student templates
use (rank colours, heat-map cells, the pager, the safe way back after a form post).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
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
    except (ZoneInfoNotFoundError, ValueError, OSError):
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


# ---------------------------------------------------------------- page-shaped data (pure)

# Codeforces' own rank colours, as CSS classes (no inline styles under our CSP).
RANK_CLASSES = {
    "newbie": "rank-newbie",
    "pupil": "rank-pupil",
    "specialist": "rank-specialist",
    "expert": "rank-expert",
    "candidate master": "rank-cm",
    "master": "rank-master",
    "international master": "rank-master",
    "grandmaster": "rank-gm",
    "international grandmaster": "rank-gm",
    "legendary grandmaster": "rank-lgm",
}
HEATMAP_MAX_DAYS = 371  # 53 weeks: the "all" heat map shows the last year


def rank_class(rank: str | None) -> str:
    return RANK_CLASSES.get((rank or "").lower(), "rank-unrated")


def profile_url(handle: str) -> str:
    return f"https://codeforces.com/profile/{handle}"


def period_notice(what: str, choice: PeriodChoice, offered: tuple[int | None, ...]) -> str | None:
    """Say so when a filter in the address is not one we offer, rather than quietly
    showing another period (an edited or stale link)."""
    if choice.asked is None:
        return None
    options = ", ".join(f"{days}" for days in offered if days is not None)
    shown = f"the last {choice.days} days" if choice.days else "all time"
    return (
        f"“{choice.asked[:20]}” is not a period for {what} (choose {options} days or All); "
        f"showing {shown}."
    )


def return_path(referer: str | None, own_host: str, fallback: str = "/students") -> str:
    """The page to go back to after a plain form post: the referring page when it is
    one of ours (same host, or a bare path), else `fallback`, so a crafted Referer
    cannot make us redirect anywhere else (`//evil.example`, `/\\evil.example`)."""
    parts = urlsplit(referer or "")
    foreign = (parts.scheme or parts.netloc) and (
        parts.scheme not in ("http", "https") or parts.netloc != own_host
    )
    path = parts.path
    if foreign or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return fallback
    target = f"{path}?{parts.query}" if parts.query else path
    return target if target.isprintable() else fallback


@dataclass(frozen=True, slots=True)
class HeatCell:
    day: str
    submissions: int
    accepted: int
    level: int  # 0..4
    weekday: int  # 0 = Monday

    @property
    def tooltip(self) -> str:
        plural = "" if self.submissions == 1 else "s"
        return f"{self.day}: {self.submissions} submission{plural}, {self.accepted} accepted"


def heat_cells(heatmap: list[dict[str, Any]], today: date, days: int | None) -> list[HeatCell]:
    """Every day of the period (capped at a year), oldest first, with a 0-4 level."""
    span = min(days or HEATMAP_MAX_DAYS, HEATMAP_MAX_DAYS)
    counts = {item["day"]: item for item in heatmap}
    peak = max((item["submissions"] for item in heatmap), default=0)
    cells = []
    for offset in range(span - 1, -1, -1):
        day = today - timedelta(days=offset)
        item = counts.get(day.isoformat(), {"submissions": 0, "accepted": 0})
        level = 0 if not item["submissions"] else 1 + min(3, 4 * item["submissions"] // (peak + 1))
        cells.append(
            HeatCell(day.isoformat(), item["submissions"], item["accepted"], level, day.weekday())
        )
    return cells


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page
