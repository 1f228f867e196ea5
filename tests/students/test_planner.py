"""The sync planner and the incremental user.status paging, on hand-made states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cpsync.students.codeforces_api import Submission, UserInfo, UserLookup
from cpsync.students.planner import (
    PageRequest,
    PagingConfig,
    PlannerConfig,
    StoredStudent,
    first_status_page,
    next_status_page,
    plan_sync,
    settle_submissions,
)

SYNCED = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PAGING = PagingConfig()


def info(handle: str, *, online: datetime, rating: int | None = None) -> UserInfo:
    document: dict[str, Any] = {
        "handle": handle,
        "lastOnlineTimeSeconds": int(online.timestamp()),
        "registrationTimeSeconds": 1_600_000_000,
    }
    if rating is not None:
        document["rating"] = rating
    return UserInfo.model_validate(document)


def student(sid: int, handle: str, rating: int | None, **overrides: Any) -> StoredStudent:
    values: dict[str, Any] = {
        "id": sid,
        "handle": handle,
        "last_synced_at": SYNCED,
        "newest_submission_id": 500,
        "rating": rating,
    }
    values.update(overrides)
    return StoredStudent(**values)


def submission(sid: int, verdict: str | None = "OK") -> Submission:
    document: dict[str, Any] = {
        "id": sid,
        "creationTimeSeconds": 1_700_000_000 + sid,
        "problem": {"contestId": 1, "index": "A", "name": "P"},
        "author": {"members": [{"handle": "x"}]},
    }
    if verdict is not None:
        document["verdict"] = verdict
    return Submission.model_validate(document)


def test_plan_makes_only_the_calls_needed() -> None:
    before = SYNCED - timedelta(days=1)
    students = [
        student(1, "alice", None, is_new=True, last_synced_at=None, newest_submission_id=None),
        student(2, "bob", 1400),  # online since the sync, rating unchanged
        student(3, "carol", 1600),  # offline since the sync, rating unchanged: nothing
        student(
            4, "dave", 1700
        ),  # online 5 minutes before the sync (inside the slack), rating moved
        student(5, "erin_old", 1500),  # renamed, offline, unchanged
        student(6, "Frank", 1300),  # same handle, Codeforces spells it "frank"
        student(7, "ghost", None),  # no such handle
        student(8, "henry", 1200),  # its lookup batch failed
        student(9, "ivy", 1900, pending_verdicts=True),  # offline, but a verdict was pending
    ]
    lookup = UserLookup(
        found={
            "alice": info("alice", online=SYNCED),
            "bob": info("bob", online=SYNCED + timedelta(hours=20), rating=1400),
            "carol": info("carol", online=before, rating=1600),
            "dave": info("dave", online=SYNCED - timedelta(minutes=5), rating=1750),
            "erin_old": info("Erin_New", online=before, rating=1500),
            "frank": info("frank", online=before, rating=1300),
            "ivy": info("ivy", online=before, rating=1900),
        },
        not_found=frozenset({"ghost"}),
    )

    plan = plan_sync(students, lookup, PlannerConfig(online_slack=timedelta(minutes=10)))

    calls = {p.student_id: (p.fetch_status, p.fetch_rating) for p in plan.students}
    assert calls == {
        1: (True, True),
        2: (True, False),
        3: (False, False),
        4: (True, True),
        5: (False, False),
        6: (False, False),
        9: (True, False),
    }
    # Status: alice, bob, dave, ivy; rating: alice (new), dave (1700 -> 1750).
    assert (plan.status_calls, plan.rating_calls) == (4, 2)
    assert plan.not_found == (7,)
    assert plan.unresolved == (8,)
    by_id = {p.student_id: p for p in plan.students}
    assert (by_id[5].handle, by_id[5].previous_handle, by_id[5].renamed) == (
        "Erin_New",
        "erin_old",
        True,
    )
    assert (by_id[6].handle, by_id[6].previous_handle, by_id[6].renamed) == (
        "frank",
        "Frank",
        False,
    )
    assert [p.student_id for p in plan.renamed] == [5]


def test_online_just_outside_the_slack_means_no_status_call() -> None:
    stored = student(1, "bob", 1400)
    lookup = UserLookup(
        {"bob": info("bob", online=SYNCED - timedelta(minutes=11), rating=1400)}, frozenset()
    )
    (plan,) = plan_sync([stored], lookup).students
    assert not plan.fetch_status


def test_last_online_reported_late_still_means_a_status_call() -> None:
    """Codeforces moved lastOnline after our last sync looked, to a moment before it."""
    seen = SYNCED - timedelta(hours=3)
    stored = student(1, "bob", 1400, last_online_at=seen)
    late = info("bob", online=seen + timedelta(minutes=30), rating=1400)
    (plan,) = plan_sync([stored], UserLookup({"bob": late}, frozenset())).students
    assert plan.fetch_status
    unchanged = info("bob", online=seen, rating=1400)
    (plan,) = plan_sync([stored], UserLookup({"bob": unchanged}, frozenset())).students
    assert not plan.fetch_status


def test_unrated_student_whose_first_rating_arrives() -> None:
    stored = student(1, "newbie", None)
    lookup = UserLookup({"newbie": info("newbie", online=SYNCED, rating=412)}, frozenset())
    (plan,) = plan_sync([stored], lookup).students
    assert plan.fetch_rating


def test_first_page_sizes() -> None:
    assert first_status_page(None, PAGING) == PageRequest(1, 1000)
    assert first_status_page(500, PAGING) == PageRequest(1, 100)


def test_full_page_of_new_submissions_asks_for_a_bigger_next_page() -> None:
    page = [submission(sid) for sid in range(1000, 900, -1)]  # 100 ids, all above 850
    step = next_status_page(PageRequest(1, 100), page, 850, PAGING)
    assert len(step.fresh) == 100
    assert step.next_page == PageRequest(101, 400)  # 100 * growth 4


def test_paging_stops_at_the_first_stored_id() -> None:
    page = [submission(sid) for sid in range(900, 500, -1)]  # 400 ids, 850 and below stored
    step = next_status_page(PageRequest(101, 400), page, 850, PAGING)
    assert [s.id for s in step.fresh] == list(range(900, 850, -1))
    assert step.next_page is None


def test_paging_stops_at_the_end_of_history() -> None:
    step = next_status_page(PageRequest(1, 1000), [submission(3), submission(2)], None, PAGING)
    assert (len(step.fresh), step.next_page) == (2, None)


def test_page_growth_is_capped() -> None:
    page = [submission(sid) for sid in range(4000, 0, -1)]
    step = next_status_page(PageRequest(1, 4000), page, None, PAGING)
    assert step.next_page == PageRequest(4001, 5000)


def test_settle_without_pending_moves_the_resume_point_to_the_newest() -> None:
    settled = settle_submissions([submission(12), submission(11, "WRONG_ANSWER")], 10)
    assert [s.id for s in settled.final] == [12, 11]
    assert (settled.newest_submission_id, settled.pending_verdicts) == (12, False)


def test_settle_keeps_the_resume_point_below_a_pending_verdict() -> None:
    fetched = [submission(14), submission(13, None), submission(12, "TESTING"), submission(11)]
    settled = settle_submissions(fetched, 10)
    # 13 is queued and 12 is TESTING: neither is stored; resume just below 12, so the
    # next sync fetches 14, 13 and 12 again (14 is upserted a second time, harmlessly).
    assert [s.id for s in settled.final] == [14, 11]
    assert (settled.newest_submission_id, settled.pending_verdicts) == (11, True)


def test_settle_with_nothing_new_keeps_the_resume_point() -> None:
    settled = settle_submissions([], 10)
    assert (settled.final, settled.newest_submission_id, settled.pending_verdicts) == (
        (),
        10,
        False,
    )


def test_settle_new_student_with_only_a_pending_submission() -> None:
    settled = settle_submissions([submission(7, "TESTING")], None)
    assert (settled.final, settled.newest_submission_id, settled.pending_verdicts) == ((), 6, True)


def test_settle_deduplicates_a_submission_seen_on_two_pages() -> None:
    settled = settle_submissions([submission(12), submission(12), submission(11)], None)
    assert [s.id for s in settled.final] == [12, 11]


@settings(max_examples=150, deadline=None, database=None)
@given(
    history=st.integers(min_value=0, max_value=60),
    stored_upto=st.integers(min_value=0, max_value=60),
    arrivals=st.lists(st.integers(min_value=0, max_value=5), max_size=6),
    first=st.integers(min_value=1, max_value=7),
    growth=st.integers(min_value=1, max_value=3),
)
def test_paging_fetches_exactly_the_unstored_submissions(
    history: int, stored_upto: int, arrivals: list[int], first: int, growth: int
) -> None:
    """Submissions arriving between pages shift offsets; nothing may be skipped."""
    ids = list(range(history, 0, -1))  # newest first, ids 1..history
    watermark = min(stored_upto, history) or None
    config = PagingConfig(first_page=first, first_page_new=first, growth=growth, max_page=20)
    request: PageRequest | None = first_status_page(watermark, config)
    seen: list[int] = []
    next_id = history + 1
    for step_number in range(1000):
        assert request is not None
        page = [
            submission(sid) for sid in ids[request.from_ - 1 : request.from_ - 1 + request.count]
        ]
        step = next_status_page(request, page, watermark, config)
        seen.extend(s.id for s in step.fresh)
        request = step.next_page
        if request is None:
            break
        for _ in range(arrivals[step_number] if step_number < len(arrivals) else 0):
            ids.insert(0, next_id)  # a new submission on top pushes the others down
            next_id += 1
    assert request is None
    settled = settle_submissions([submission(sid) for sid in seen], watermark)
    initial_unstored = set(range((watermark or 0) + 1, history + 1))
    assert initial_unstored <= {s.id for s in settled.final}
    assert all(sid > (watermark or 0) for sid in seen)


def test_student_without_submissions_is_not_fetched_while_offline() -> None:
    stored = student(1, "quiet", None, newest_submission_id=None)
    lookup = UserLookup({"quiet": info("quiet", online=SYNCED - timedelta(days=3))}, frozenset())
    (plan,) = plan_sync([stored], lookup).students
    assert (plan.fetch_status, plan.fetch_rating) == (False, False)
