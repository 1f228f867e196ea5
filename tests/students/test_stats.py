"""Contest history and problem statistics on a small hand-made student.

Every expected number below is a literal worked out by hand from the rows in this file;
the comment next to it says how.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cpsync.students.codeforces_api import parse_rating_changes, parse_submissions
from cpsync.students.stats import (
    CatalogueProblem,
    HeatmapDay,
    ProblemKey,
    RatingRow,
    SubmissionRow,
    build_solve_book,
    contest_history,
    heatmap,
    problem_stats,
    problem_url,
    twin_canonical_keys,
)

from .conftest import recording

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no DST
LOS_ANGELES = ZoneInfo("America/Los_Angeles")  # UTC-08:00 in November


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cp(contest: int, index: str, name: str, rating: int | None) -> CatalogueProblem:
    return CatalogueProblem(contest, index, name, rating)


CATALOGUE = {
    # 2023 (Div. 1) and 2024 (Div. 2) ran in parallel: 2023 A is 2024 B.
    2023: [cp(2023, "A", "Shared Twin", 1500), cp(2023, "B", "Hard One", 2400),
           cp(2023, "C", "Div1 Only", 2000)],
    2024: [cp(2024, "A", "Warm-up", 800), cp(2024, "B", "Shared Twin", 1500),
           cp(2024, "C", "Medium", 1200)],
    2030: [cp(2030, "A", "Lone", 900), cp(2030, "B", "Unrated New", None)],
}  # fmt: skip


def row(
    sid: int,
    when: str,
    contest: int | None,
    index: str,
    name: str,
    rating: int | None,
    verdict: str,
) -> SubmissionRow:
    return SubmissionRow(sid, at(when), contest, index, name, rating, verdict)


SUBMISSIONS = [
    row(1, "2026-11-22T10:00", 2024, "C", "Medium", 1200, "WRONG_ANSWER"),
    row(2, "2026-11-18T20:00", 2023, "A", "Shared Twin", 1500, "OK"),
    row(3, "2026-11-20T19:00", 2024, "A", "Warm-up", 800, "WRONG_ANSWER"),
    row(4, "2026-11-20T19:05", 2024, "A", "Warm-up", 800, "OK"),
    row(5, "2026-11-20T19:10", 2024, "A", "Warm-up", 800, "OK"),  # solved again: counts once
    row(6, "2026-11-10T12:00", 2030, "A", "Lone", 900, "OK"),
    row(7, "2026-11-09T12:00", 2030, "B", "Unrated New", None, "OK"),
    # Fetched before the problem was rated; the catalogue now says 2400.
    row(8, "2026-10-01T12:00", 2023, "B", "Hard One", None, "OK"),
    row(9, "2026-10-02T12:00", 2023, "C", "Div1 Only", 2000, "TIME_LIMIT_EXCEEDED"),
    row(10, "2025-06-01T12:00", 100500, "A", "Gym Task", None, "OK"),
    row(11, "2026-11-22T11:00", 2024, "C", "Medium", 1200, "COMPILATION_ERROR"),
]  # fmt: skip

RATINGS = [
    RatingRow(2010, "Old Round", 5000, 1200, 1300, at("2024-01-01T18:00")),  # not in catalogue
    RatingRow(2040, "Round 2040", 3000, 1300, 1350, at("2025-12-01T18:00")),  # not in catalogue
    RatingRow(2030, "Round 2030", 800, 1350, 1400, at("2026-09-01T12:00")),
    RatingRow(2024, "Round 2024 (Div. 2)", 1500, 1400, 1450, at("2026-11-20T18:00")),
]

BOOK = build_solve_book(SUBMISSIONS, CATALOGUE)


def test_solve_book_merges_twins_and_repeats() -> None:
    # OK rows: 2, 4, 5, 6, 7, 8, 10 -> problems 2023A, 2024A (twice), 2030A, 2030B,
    # 2023B, gym 100500A: six distinct. 2024B is the same problem as 2023A.
    assert sorted(BOOK.solved) == [(2023, "A"), (2023, "B"), (2024, "A"), (2030, "A"), (2030, "B"),
                                   (100500, "A")]  # fmt: skip
    assert BOOK.is_solved((2024, "B"))  # never submitted there, solved as 2023 A
    assert BOOK.solved[(2024, "A")].first_solved_at == at("2026-11-20T19:05")
    assert BOOK.solved[(2023, "B")].rating == 2400  # catalogue beats the stale submission


@pytest.mark.parametrize(
    ("days", "contests"),
    [
        (30, [2024]),  # 2026-11-20 is 2 days before NOW
        (90, [2030, 2024]),  # 2026-09-01 is 82 days before
        (365, [2040, 2030, 2024]),  # 2025-12-01 is 356 days before
        (None, [2010, 2040, 2030, 2024]),
    ],
)
def test_contest_history_periods(days: int | None, contests: list[int]) -> None:
    history = contest_history(RATINGS, BOOK, CATALOGUE, now=NOW, days=days)
    assert [entry.contest_id for entry in history] == contests


def test_contest_history_entry_values() -> None:
    round_2030, round_2024 = contest_history(RATINGS, BOOK, CATALOGUE, now=NOW, days=90)

    assert (round_2024.date, round_2024.rank, round_2024.rating_change) == (
        at("2026-11-20T18:00"),
        1500,
        50,
    )
    # 2024: A solved (row 4), B solved as its twin 2023 A (row 2), C only WA/CE -> C left.
    assert (round_2024.problems_total, round_2024.unsolved, round_2024.unsolved_count) == (
        3,
        ("C",),
        1,
    )
    # 2030: A (row 6) and B (row 7) solved.
    assert (round_2030.rating_change, round_2030.unsolved_count) == (50, 0)


def test_contest_missing_from_catalogue_has_unknown_unsolved() -> None:
    (old, *_rest) = contest_history(RATINGS, BOOK, CATALOGUE, now=NOW, days=None)
    assert (old.contest_id, old.problems_total, old.unsolved, old.unsolved_count) == (
        2010,
        None,
        None,
        None,
    )


def test_problem_stats_last_7_days() -> None:
    stats = problem_stats(SUBMISSIONS, BOOK, now=NOW, days=7, zone=KOLKATA)
    # Since 2026-11-15 12:00: first solves of 2023A (11-18, 1500) and 2024A (11-20, 800).
    assert stats.solved == 2
    assert stats.hardest is not None
    assert (stats.hardest.name, stats.hardest.rating) == ("Shared Twin", 1500)
    assert stats.hardest.url == "https://codeforces.com/contest/2023/problem/A"
    assert stats.average_rating == 1150.0  # (1500 + 800) / 2
    assert stats.average_per_day == pytest.approx(2 / 7)
    assert stats.rating_buckets == ((800, 1), (900, 0), (1000, 0), (1100, 0), (1200, 0), (1300, 0),
                                    (1400, 0), (1500, 1))  # fmt: skip
    assert stats.unrated == 0
    # In India time (+05:30): row 2 at 20:00 UTC is 01:30 on 11-19; rows 3-5 at 19:0x UTC
    # are 00:3x on 11-21 (two of them OK); rows 1 and 11 are on 11-22 (WA, CE).
    assert stats.heatmap == (
        HeatmapDay(date(2026, 11, 19), 1, 1),
        HeatmapDay(date(2026, 11, 21), 3, 2),
        HeatmapDay(date(2026, 11, 22), 2, 0),
    )


def test_problem_stats_last_30_days() -> None:
    stats = problem_stats(SUBMISSIONS, BOOK, now=NOW, days=30, zone=KOLKATA)
    # Since 2026-10-23 12:00: 2023A 1500, 2024A 800, 2030A 900, 2030B unrated.
    assert (stats.solved, stats.unrated) == (4, 1)
    assert stats.average_rating == pytest.approx(3200 / 3)  # (1500 + 800 + 900) / 3
    assert stats.average_per_day == pytest.approx(4 / 30)
    expected = {800: 1, 900: 1, 1000: 0, 1100: 0, 1200: 0, 1300: 0, 1400: 0, 1500: 1}
    assert dict(stats.rating_buckets) == expected


def test_problem_stats_last_90_days() -> None:
    stats = problem_stats(SUBMISSIONS, BOOK, now=NOW, days=90, zone=KOLKATA)
    # Adds 2023B (2026-10-01), rated 2400 by the catalogue.
    assert (stats.solved, stats.unrated) == (5, 1)
    assert stats.hardest is not None
    assert (stats.hardest.rating, stats.hardest.url) == (
        2400,
        "https://codeforces.com/contest/2023/problem/B",
    )
    assert stats.average_rating == 1400.0  # (1500 + 800 + 900 + 2400) / 4 = 5600 / 4
    assert stats.average_per_day == pytest.approx(5 / 90)
    assert len(stats.rating_buckets) == 17  # 800, 900, ..., 2400
    assert sum(count for _, count in stats.rating_buckets) == 4


def test_problem_stats_all_time() -> None:
    stats = problem_stats(SUBMISSIONS, BOOK, now=NOW, days=None, zone=KOLKATA)
    # Adds the gym problem (unrated). First submission 2025-06-01 12:00 -> NOW is
    # 365 + 174 = 539 days (Jun 1 -> Nov 22 2026: 30+31+31+30+31+21).
    assert (stats.solved, stats.unrated) == (6, 2)
    assert stats.average_rating == 1400.0
    assert stats.average_per_day == pytest.approx(6 / 539)
    # 11 submissions on 8 local dates: rows 1 and 11 share 11-22, rows 3-5 share 11-21;
    # rows 2, 6, 7, 8, 9, 10 each have a date of their own.
    assert len(stats.heatmap) == 8
    assert sum(day.submissions for day in stats.heatmap) == 11


def test_no_solves_at_all() -> None:
    rows = [row(1, "2026-11-21T10:00", 1, "A", "X", 800, "WRONG_ANSWER")]
    stats = problem_stats(rows, build_solve_book(rows, {}), now=NOW, days=7, zone=UTC)
    assert (stats.solved, stats.hardest, stats.average_rating, stats.rating_buckets) == (
        0,
        None,
        None,
        (),
    )
    assert stats.heatmap == (HeatmapDay(date(2026, 11, 21), 1, 0),)


def test_gym_link_and_archive_problem_without_contest() -> None:
    assert problem_url(100500, "A") == "https://codeforces.com/gym/100500/problem/A"
    assert problem_url(None, "100") is None


# ---------------------------------------------------------------- heat-map days


@pytest.mark.parametrize(
    ("moment", "zone", "day"),
    [
        ("2026-11-22T18:29:59", KOLKATA, date(2026, 11, 22)),  # 23:59:59 IST
        ("2026-11-22T18:30:00", KOLKATA, date(2026, 11, 23)),  # 00:00 IST next day
        ("2026-11-22T07:59:59", LOS_ANGELES, date(2026, 11, 21)),  # 23:59:59 PST the day before
        ("2026-11-22T08:00:00", LOS_ANGELES, date(2026, 11, 22)),  # 00:00 PST
        ("2026-03-08T07:30:00", LOS_ANGELES, date(2026, 3, 7)),  # 23:30 PST, before the DST jump
        ("2026-03-08T10:30:00", LOS_ANGELES, date(2026, 3, 8)),  # 03:30 PDT, after it
        ("2026-11-22T23:59:59", UTC, date(2026, 11, 22)),
    ],
)
def test_heatmap_day_boundaries(moment: str, zone: ZoneInfo, day: date) -> None:
    rows = [row(1, moment, 1, "A", "X", 800, "OK")]
    assert heatmap(rows, since=None, now=at("2027-01-01T00:00"), zone=zone) == (
        HeatmapDay(day, 1, 1),
    )


def test_same_submissions_fall_on_different_days_by_zone() -> None:
    rows = [
        row(1, "2026-11-21T20:00", 1, "A", "X", 800, "OK"),  # IST 11-22 01:30, PST 11-21 12:00
        row(
            2, "2026-11-22T06:00", 1, "B", "Y", 900, "WRONG_ANSWER"
        ),  # IST 11-22 11:30, PST 11-21 22:00
        row(3, "2026-11-22T09:00", 1, "B", "Y", 900, "OK"),  # IST 11-22 14:30, PST 11-22 01:00
    ]
    india = heatmap(rows, since=None, now=NOW, zone=KOLKATA)
    california = heatmap(rows, since=None, now=NOW, zone=LOS_ANGELES)
    assert india == (HeatmapDay(date(2026, 11, 22), 3, 2),)
    assert california == (
        HeatmapDay(date(2026, 11, 21), 2, 1),
        HeatmapDay(date(2026, 11, 22), 1, 1),
    )


# ---------------------------------------------------------------- Div. 1 / Div. 2 twins


def test_twins_need_adjacent_ids_and_equal_name_and_rating() -> None:
    facts: dict[ProblemKey, tuple[str, int | None]] = {
        (1000, "C"): ("Twin", 1700),
        (1001, "A"): ("Twin", 1700),  # adjacent: same problem as 1000 C
        (1003, "A"): ("Twin", 1700),  # two ids away: a different problem
        (1002, "B"): ("Twin", 1800),  # adjacent to 1003 but rated differently
        (1004, "D"): ("Other", 1700),
    }
    canonical = twin_canonical_keys(facts)
    assert canonical[(1001, "A")] == (1000, "C")
    assert canonical[(1003, "A")] == (1003, "A")
    assert canonical[(1002, "B")] == (1002, "B")
    assert canonical[(1004, "D")] == (1004, "D")


def test_solving_both_copies_of_a_twin_counts_once() -> None:
    rows = [
        row(1, "2026-11-20T10:00", 2024, "B", "Shared Twin", 1500, "OK"),  # Div. 2 copy first
        row(2, "2026-11-21T10:00", 2023, "A", "Shared Twin", 1500, "OK"),  # then the Div. 1 copy
    ]
    book = build_solve_book(rows, CATALOGUE)
    stats = problem_stats(rows, book, now=NOW, days=7, zone=UTC)
    assert stats.solved == 1
    assert stats.rating_buckets == ((1500, 1),)
    # The representative is the first accepted copy, so its link is where it was solved.
    assert stats.hardest is not None
    assert stats.hardest.url == "https://codeforces.com/contest/2024/problem/B"
    # ...while the heat map still shows both accepted submissions.
    assert sum(day.accepted for day in stats.heatmap) == 2


def test_twins_merge_from_submissions_alone_without_a_catalogue() -> None:
    rows = [
        row(1, "2026-11-20T10:00", 1500, "D", "Same", 2100, "OK"),
        row(2, "2026-11-20T11:00", 1501, "B", "Same", 2100, "OK"),
    ]
    assert len(build_solve_book(rows, {}).solved) == 1


def test_bad_period_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        problem_stats([], BOOK, now=NOW, days=0, zone=UTC)


# ---------------------------------------------------------------- on real recordings


def test_stats_over_a_real_history() -> None:
    submissions = parse_submissions(
        recording("user-status-result-Absam-1155subs-2025-05-cftracker.json").read_bytes()
    )
    changes = parse_rating_changes(
        recording("user-rating-result-Absam-2025-05-cftracker.json").read_bytes()
    )
    rows = [SubmissionRow.from_submission(s) for s in submissions if s.is_final]
    ratings = [RatingRow.from_change(change) for change in changes]
    book = build_solve_book(rows, {})
    now = datetime(2025, 5, 6, tzinfo=UTC)

    stats = problem_stats(rows, book, now=now, days=None, zone=KOLKATA)
    history = contest_history(ratings, book, {}, now=now, days=None)

    accepted_keys = {(s.problem.contest_id, s.problem.index) for s in submissions if s.accepted}
    assert stats.solved <= len(accepted_keys)  # twins only ever lower the count
    assert sum(day.submissions for day in stats.heatmap) == len(rows)
    assert sum(day.accepted for day in stats.heatmap) == 623
    assert len(history) == 107
    assert history[-1].date <= now


def test_submission_row_refuses_a_pending_verdict() -> None:
    (pending,) = parse_submissions(
        b'{"status":"OK","result":[{"id":1,"creationTimeSeconds":1,"problem":{"index":"A","name":"P"},'
        b'"author":{},"verdict":"TESTING"}]}'
    )
    with pytest.raises(ValueError, match="final verdict"):
        SubmissionRow.from_submission(pending)


def test_now_bounds_the_window() -> None:
    future = [row(1, "2026-11-23T00:00", 1, "A", "X", 800, "OK")]
    stats = problem_stats(future, build_solve_book(future, {}), now=NOW, days=7, zone=UTC)
    assert (stats.solved, stats.heatmap) == (0, ())
    assert NOW - timedelta(days=7) < at("2026-11-23T00:00")
