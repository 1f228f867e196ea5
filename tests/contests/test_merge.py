from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cpsync.contests.merge import ChangeKind, StoredContest, plan_merge
from cpsync.platforms.base import ParsedContest

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=3)


def parsed(key: str, start: datetime, *, name: str = "Round", minutes: int = 120) -> ParsedContest:
    end = start + timedelta(minutes=minutes)
    return ParsedContest(
        "codeforces", key, name, f"https://codeforces.com/contests/{key}", start, end, minutes * 60
    )


def stored(
    contest: ParsedContest,
    *,
    contest_id: int = 1,
    status: str = "scheduled",
    revision: int = 1,
    missing_since: datetime | None = None,
) -> StoredContest:
    return StoredContest(
        contest_id,
        contest.key,
        contest.name,
        contest.url,
        contest.start,
        contest.end,
        contest.duration_seconds,
        status,
        revision,
        missing_since,
    )


TOMORROW = NOW + timedelta(days=1)


def test_new_contests_are_inserted() -> None:
    plan = plan_merge([], [parsed("1", TOMORROW), parsed("2", TOMORROW)], NOW, GRACE)
    assert [c.key for c in plan.inserts] == ["1", "2"]
    assert plan.changes == [("1", ChangeKind.ADDED), ("2", ChangeKind.ADDED)]


def test_same_second_contests_are_two_contests() -> None:
    div1, div2 = parsed("2000", TOMORROW, name="Div. 1"), parsed("2001", TOMORROW, name="Div. 2")
    plan = plan_merge([stored(div1)], [div1, div2], NOW, GRACE)
    assert [c.key for c in plan.inserts] == ["2001"]
    assert plan.unchanged == 1


def test_unchanged_contest_makes_no_update() -> None:
    contest = parsed("1", TOMORROW)
    plan = plan_merge([stored(contest, revision=4)], [contest], NOW, GRACE)
    assert plan.updates == []
    assert plan.seen_ids == [1]
    assert plan.unchanged == 1


def test_reschedule_updates_the_same_row_and_bumps_revision() -> None:
    old = stored(parsed("1", TOMORROW), revision=2)
    moved = parsed("1", TOMORROW + timedelta(hours=2))
    plan = plan_merge([old], [moved], NOW, GRACE)
    (update,) = plan.updates
    assert update.contest_id == 1
    assert update.change is ChangeKind.RESCHEDULED
    assert update.values["start"] == moved.start
    assert update.values["revision"] == 3
    assert plan.inserts == []


def test_rename_bumps_revision() -> None:
    plan = plan_merge(
        [stored(parsed("1", TOMORROW))], [parsed("1", TOMORROW, name="New")], NOW, GRACE
    )
    (update,) = plan.updates
    assert update.change is ChangeKind.RENAMED
    assert update.values == {
        "name": "New",
        "url": "https://codeforces.com/contests/1",
        "revision": 2,
    }


def test_missing_contest_waits_for_the_grace_period() -> None:
    gone = stored(parsed("1", TOMORROW))
    plan = plan_merge([gone], [parsed("2", TOMORROW)], NOW, GRACE)
    (update,) = plan.updates
    assert update.values == {"missing_since": NOW}
    assert update.change is None


def test_missing_contest_is_cancelled_after_the_grace_period() -> None:
    gone = stored(parsed("1", TOMORROW), missing_since=NOW - GRACE)
    plan = plan_merge([gone], [parsed("2", TOMORROW)], NOW, GRACE)
    (update,) = plan.updates
    assert update.change is ChangeKind.CANCELLED
    assert update.values["status"] == "cancelled"
    assert update.values["revision"] == 2


def test_still_within_grace_changes_nothing() -> None:
    gone = stored(parsed("1", TOMORROW), missing_since=NOW - GRACE + timedelta(minutes=1))
    plan = plan_merge([gone], [parsed("2", TOMORROW)], NOW, GRACE)
    assert plan.updates == []


def test_zero_grace_cancels_at_once() -> None:
    plan = plan_merge([stored(parsed("1", TOMORROW))], [parsed("2", TOMORROW)], NOW, timedelta(0))
    assert plan.count(ChangeKind.CANCELLED) == 1


def test_started_contest_missing_from_the_list_is_left_alone() -> None:
    running = stored(parsed("1", NOW - timedelta(minutes=5)))
    plan = plan_merge([running], [parsed("2", TOMORROW)], NOW, timedelta(0))
    assert plan.updates == []


def test_cancelled_contest_that_reappears_is_restored() -> None:
    contest = parsed("1", TOMORROW)
    old = stored(contest, status="cancelled", revision=2, missing_since=NOW - timedelta(days=1))
    plan = plan_merge([old], [contest], NOW, GRACE)
    (update,) = plan.updates
    assert update.change is ChangeKind.RESTORED
    assert update.values == {"status": "scheduled", "revision": 3, "missing_since": None}


def test_reappearing_within_grace_clears_missing_without_a_revision() -> None:
    contest = parsed("1", TOMORROW)
    plan = plan_merge(
        [stored(contest, missing_since=NOW - timedelta(hours=1))], [contest], NOW, GRACE
    )
    (update,) = plan.updates
    assert update.values == {"missing_since": None}
    assert plan.changes == []


def test_incomplete_fetch_never_marks_anything_missing() -> None:
    gone = stored(parsed("1", TOMORROW), missing_since=NOW - GRACE)
    plan = plan_merge([gone], [parsed("2", TOMORROW)], NOW, GRACE, detect_missing=False)
    assert plan.updates == []
    assert [c.key for c in plan.inserts] == ["2"]


def test_empty_fetch_never_marks_anything_missing() -> None:
    plan = plan_merge([stored(parsed("1", TOMORROW))], [], NOW, timedelta(0))
    assert plan.updates == []
