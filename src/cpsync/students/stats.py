"""A student's contest history and problem-solving statistics, from stored rows (pure).

Counting rules, applied everywhere:

- a problem is solved by a submission with verdict OK, and counts once however often
  it is solved (team submissions count for their members);
- Div. 1 / Div. 2 twins count once: the same problem name and rating in two contests
  whose ids are adjacent (|Δid| == 1) is one problem;
- a problem's rating comes from the catalogue (`problemset.problems`) when it knows the
  problem, else from the submission: ratings appear days after a round, so the
  catalogue is the fresher source;
- a solved problem belongs to the period of its *first* accepted submission, so
  re-solving an old problem does not count as new work;
- periods are the last N days up to `now` (None: everything); the heat map counts
  every submission, per local date in the student's time zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import pairwise
from statistics import fmean

from cpsync.students.codeforces_api import RatingChange, Submission

CONTEST_PERIODS: tuple[int | None, ...] = (30, 90, 365, None)
PROBLEM_PERIODS: tuple[int | None, ...] = (7, 30, 90, None)
GYM_FIRST_ID = 100_000
PROBLEM_BASE_URL = "https://codeforces.com"

# (contest id, problem index); problems outside any contest are keyed by name instead.
ProblemKey = tuple[int | None, str]


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    id: int
    created_at: datetime
    contest_id: int | None
    problem_index: str
    problem_name: str
    problem_rating: int | None
    verdict: str

    @classmethod
    def from_submission(cls, submission: Submission) -> SubmissionRow:
        if not submission.is_final or submission.verdict is None:
            raise ValueError("only submissions with a final verdict are stored")
        problem = submission.problem
        return cls(
            id=submission.id,
            created_at=submission.created_at,
            contest_id=problem.contest_id,
            problem_index=problem.index,
            problem_name=problem.name,
            problem_rating=problem.rating,
            verdict=submission.verdict,
        )

    @property
    def accepted(self) -> bool:
        return self.verdict == "OK"

    @property
    def key(self) -> ProblemKey:
        return problem_key(self.contest_id, self.problem_index, self.problem_name)


@dataclass(frozen=True, slots=True)
class RatingRow:
    contest_id: int
    contest_name: str
    rank: int
    old_rating: int
    new_rating: int
    updated_at: datetime

    @classmethod
    def from_change(cls, change: RatingChange) -> RatingRow:
        return cls(
            change.contest_id,
            change.contest_name,
            change.rank,
            change.old_rating,
            change.new_rating,
            change.updated_at,
        )


@dataclass(frozen=True, slots=True)
class CatalogueProblem:
    contest_id: int
    index: str
    name: str
    rating: int | None


# Per contest id, its problems.
Catalogue = Mapping[int, Sequence[CatalogueProblem]]


def problem_key(contest_id: int | None, index: str, name: str) -> ProblemKey:
    return (contest_id, index) if contest_id is not None else (None, name)


def problem_url(contest_id: int | None, index: str) -> str | None:
    if contest_id is None:
        return None
    section = "gym" if contest_id >= GYM_FIRST_ID else "contest"
    return f"{PROBLEM_BASE_URL}/{section}/{contest_id}/problem/{index}"


# ---------------------------------------------------------------- twins and solves


def twin_canonical_keys(
    facts: Mapping[ProblemKey, tuple[str, int | None]],
) -> dict[ProblemKey, ProblemKey]:
    """Map each key to its twin group's representative (the lowest contest id).

    `facts` holds each problem's (name, rating). Equal name and rating in contests with
    adjacent ids makes twins; chains (ids 1, 2, 3) merge into one group.
    """
    groups: dict[tuple[str, int | None], list[ProblemKey]] = {}
    for key, (name, rating) in facts.items():
        if key[0] is not None:
            groups.setdefault((name.strip().casefold(), rating), []).append(key)
    canonical: dict[ProblemKey, ProblemKey] = {key: key for key in facts}
    for keys in groups.values():
        keys.sort(key=lambda key: (key[0] or 0, key[1]))
        for previous, current in pairwise(keys):
            if (current[0] or 0) - (previous[0] or 0) == 1:
                canonical[current] = canonical[previous]
    return canonical


@dataclass(frozen=True, slots=True)
class SolvedProblem:
    key: ProblemKey  # the canonical key of its twin group
    contest_id: int | None  # where the first accepted submission was
    index: str
    name: str
    rating: int | None
    first_solved_at: datetime

    @property
    def url(self) -> str | None:
        return problem_url(self.contest_id, self.index)


@dataclass(frozen=True, slots=True)
class SolveBook:
    """Every distinct problem solved, twins merged, with the canonical-key mapping."""

    solved: Mapping[ProblemKey, SolvedProblem]
    canonical: Mapping[ProblemKey, ProblemKey]

    def is_solved(self, key: ProblemKey) -> bool:
        return self.canonical.get(key, key) in self.solved


def build_solve_book(submissions: Iterable[SubmissionRow], catalogue: Catalogue) -> SolveBook:
    rows = list(submissions)
    facts = _problem_facts(rows, catalogue)
    canonical = twin_canonical_keys(facts)
    solved: dict[ProblemKey, SolvedProblem] = {}
    for row in sorted((row for row in rows if row.accepted), key=lambda row: row.created_at):
        group = canonical.get(row.key, row.key)
        if group not in solved:
            name, rating = facts[row.key]
            solved[group] = SolvedProblem(
                group, row.contest_id, row.problem_index, name, rating, row.created_at
            )
    return SolveBook(solved, canonical)


def _problem_facts(
    rows: Sequence[SubmissionRow], catalogue: Catalogue
) -> dict[ProblemKey, tuple[str, int | None]]:
    facts: dict[ProblemKey, tuple[str, int | None]] = {}
    for problems in catalogue.values():
        for problem in problems:
            facts[(problem.contest_id, problem.index)] = (problem.name, problem.rating)
    # Newest rows first, so the latest rating a submission carried wins.
    for row in sorted(rows, key=lambda row: row.created_at, reverse=True):
        name, rating = facts.get(row.key, (row.problem_name, None))
        facts[row.key] = (name, rating if rating is not None else row.problem_rating)
    return facts


# ---------------------------------------------------------------- contest history


@dataclass(frozen=True, slots=True)
class ContestEntry:
    contest_id: int
    contest_name: str
    date: datetime  # when the rating was updated, UTC
    rank: int
    old_rating: int
    new_rating: int
    problems_total: int | None  # None: the contest is not in the catalogue
    unsolved: tuple[str, ...] | None  # indices not solved to date, twins counted

    @property
    def rating_change(self) -> int:
        return self.new_rating - self.old_rating

    @property
    def unsolved_count(self) -> int | None:
        return None if self.unsolved is None else len(self.unsolved)


def contest_history(
    ratings: Iterable[RatingRow],
    book: SolveBook,
    catalogue: Catalogue,
    *,
    now: datetime,
    days: int | None,
) -> tuple[ContestEntry, ...]:
    """Rated contests in the period, oldest first (the order a rating graph wants)."""
    since = _period_start(now, days)
    entries = [
        _contest_entry(row, book, catalogue)
        for row in ratings
        if (since is None or row.updated_at >= since) and row.updated_at <= now
    ]
    return tuple(sorted(entries, key=lambda entry: (entry.date, entry.contest_id)))


def _contest_entry(row: RatingRow, book: SolveBook, catalogue: Catalogue) -> ContestEntry:
    problems = catalogue.get(row.contest_id)
    unsolved = (
        None
        if problems is None
        else tuple(p.index for p in problems if not book.is_solved((p.contest_id, p.index)))
    )
    return ContestEntry(
        contest_id=row.contest_id,
        contest_name=row.contest_name,
        date=row.updated_at,
        rank=row.rank,
        old_rating=row.old_rating,
        new_rating=row.new_rating,
        problems_total=None if problems is None else len(problems),
        unsolved=unsolved,
    )


# ---------------------------------------------------------------- problem statistics


@dataclass(frozen=True, slots=True)
class HeatmapDay:
    day: date  # in the student's time zone
    submissions: int
    accepted: int


@dataclass(frozen=True, slots=True)
class ProblemStats:
    solved: int  # distinct problems first solved in the period
    hardest: SolvedProblem | None  # highest rated among them
    average_rating: float | None  # over the rated ones
    average_per_day: float
    rating_buckets: tuple[tuple[int, int], ...]  # (bucket floor, distinct solved), no gaps
    unrated: int
    heatmap: tuple[HeatmapDay, ...]


def problem_stats(
    submissions: Iterable[SubmissionRow],
    book: SolveBook,
    *,
    now: datetime,
    days: int | None,
    zone: tzinfo,
) -> ProblemStats:
    """Figures for the period; `book` must come from the same `submissions`."""
    rows = list(submissions)
    since = _period_start(now, days)
    solved = [
        problem
        for problem in book.solved.values()
        if (since is None or problem.first_solved_at >= since) and problem.first_solved_at <= now
    ]
    rated = [problem for problem in solved if problem.rating is not None]
    return ProblemStats(
        solved=len(solved),
        hardest=max(rated, key=_hardness, default=None),
        average_rating=fmean(p.rating for p in rated if p.rating is not None) if rated else None,
        average_per_day=len(solved) / _period_days(rows, now, days),
        rating_buckets=rating_buckets(rated),
        unrated=len(solved) - len(rated),
        heatmap=heatmap(rows, since=since, now=now, zone=zone),
    )


def _hardness(problem: SolvedProblem) -> tuple[int, datetime]:
    # Ties go to the most recent solve: it says more about the student today.
    return (problem.rating or 0, problem.first_solved_at)


def rating_buckets(rated: Iterable[SolvedProblem]) -> tuple[tuple[int, int], ...]:
    """Distinct solved problems per 100-point bucket, from lowest to highest, no gaps."""
    counts = Counter((problem.rating or 0) // 100 * 100 for problem in rated)
    if not counts:
        return ()
    return tuple((floor, counts[floor]) for floor in range(min(counts), max(counts) + 100, 100))


def heatmap(
    rows: Iterable[SubmissionRow], *, since: datetime | None, now: datetime, zone: tzinfo
) -> tuple[HeatmapDay, ...]:
    totals: Counter[date] = Counter()
    accepted: Counter[date] = Counter()
    for row in rows:
        if (since is not None and row.created_at < since) or row.created_at > now:
            continue
        day = row.created_at.astimezone(zone).date()
        totals[day] += 1
        accepted[day] += row.accepted
    return tuple(HeatmapDay(day, totals[day], accepted[day]) for day in sorted(totals))


def _period_start(now: datetime, days: int | None) -> datetime | None:
    if days is not None and days < 1:
        raise ValueError("a period lasts at least one day")
    return None if days is None else now - timedelta(days=days)


def _period_days(rows: Sequence[SubmissionRow], now: datetime, days: int | None) -> float:
    """The period's length in days; for "all", from the first submission, at least 1."""
    if days is not None:
        return float(days)
    first = min((row.created_at for row in rows), default=now)
    return max(1.0, (now - first) / timedelta(days=1))
