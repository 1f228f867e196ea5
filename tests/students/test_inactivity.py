"""Inactivity reminders: once per inactive streak, or every M days when asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cpsync.students.inactivity import Activity, ReminderPolicy, reminder_decision

LAST = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # the student's last submission
WEEK = ReminderPolicy()  # 7 days, any submission, no repeat


def decide(now: datetime, *, policy: ReminderPolicy = WEEK, reminded: datetime | None = None,
           activities: list[Activity] | None = None) -> bool:  # fmt: skip
    acts = [Activity(LAST, accepted=True)] if activities is None else activities
    return reminder_decision(acts, now=now, policy=policy, last_reminder_at=reminded).send


def test_not_before_n_days() -> None:
    assert not decide(LAST + timedelta(days=7) - timedelta(seconds=1))
    assert decide(LAST + timedelta(days=7))


def test_exactly_once_per_streak_without_repeat() -> None:
    sent = LAST + timedelta(days=7)
    assert not decide(sent + timedelta(hours=1), reminded=sent)
    assert not decide(sent + timedelta(days=60), reminded=sent)


def test_repeat_every_m_days() -> None:
    policy = ReminderPolicy(repeat_every_days=3)
    sent = LAST + timedelta(days=7)
    assert not decide(sent + timedelta(days=3) - timedelta(seconds=1), policy=policy, reminded=sent)
    assert decide(sent + timedelta(days=3), policy=policy, reminded=sent)


def test_new_activity_starts_a_new_streak() -> None:
    sent = LAST + timedelta(days=7)  # reminder for the first streak
    comeback = LAST + timedelta(days=11)
    activities = [Activity(LAST, True), Activity(comeback, False)]
    assert not decide(comeback + timedelta(days=6), reminded=sent, activities=activities)
    assert decide(comeback + timedelta(days=7), reminded=sent, activities=activities)


def test_late_synced_submission_does_not_swallow_the_next_reminder() -> None:
    # Reminded on day 7; a later sync reveals a submission from day 6 (made before the
    # reminder). The streak now starts on day 6 and is due on day 13: remind then.
    sent = LAST + timedelta(days=7)
    late = LAST + timedelta(days=6)
    activities = [Activity(LAST, True), Activity(late, True)]
    assert not decide(
        late + timedelta(days=7) - timedelta(seconds=1), reminded=sent, activities=activities
    )
    assert decide(late + timedelta(days=7), reminded=sent, activities=activities)


def test_accepted_only_ignores_failed_submissions() -> None:
    activities = [Activity(LAST - timedelta(days=9), True), Activity(LAST, False)]
    now = LAST + timedelta(days=1)
    assert decide(now, policy=ReminderPolicy(accepted_only=True), activities=activities)
    assert not decide(now, activities=activities)  # any submission counts by default


def test_student_without_any_submission() -> None:
    now = LAST + timedelta(days=30)
    assert not reminder_decision([], now=now, policy=WEEK, last_reminder_at=None).send
    decision = reminder_decision(
        [], now=now, policy=WEEK, last_reminder_at=None, tracked_since=LAST
    )
    assert (decision.send, decision.inactive_since) == (True, LAST)


def test_submissions_from_before_tracking_began_still_count() -> None:
    # Added to the roster 3 days after the last submission: inactive from the submission.
    added = LAST + timedelta(days=3)
    decision = reminder_decision(
        [Activity(LAST, True)],
        now=LAST + timedelta(days=7),
        policy=WEEK,
        last_reminder_at=None,
        tracked_since=added,
    )
    assert (decision.send, decision.inactive_since) == (True, LAST)


def test_decision_says_why() -> None:
    decision = reminder_decision(
        [Activity(LAST, True)], now=LAST + timedelta(days=8), policy=WEEK, last_reminder_at=None
    )
    assert (decision.send, decision.inactive_since, decision.reason) == (
        True,
        LAST,
        "first reminder of this streak",
    )


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="whole days"):
        ReminderPolicy(inactive_days=0)
    with pytest.raises(ValueError, match="repeats"):
        ReminderPolicy(repeat_every_days=0)


@settings(max_examples=100, deadline=None, database=None)
@example(gaps=[7 * 24, 7 * 24 + 1], days=7)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=30 * 24), min_size=1, max_size=6),
    days=st.integers(min_value=1, max_value=10),
)
def test_simulated_hourly_cron_sends_one_reminder_per_streak(gaps: list[int], days: int) -> None:
    """Run the decision every hour over a history of submissions; count the reminders."""
    policy = ReminderPolicy(inactive_days=days)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [start]
    for gap in gaps:
        moments.append(moments[-1] + timedelta(hours=gap))
    end = moments[-1] + timedelta(days=days + 3)
    sent: list[datetime] = []
    now = start
    while now <= end:
        seen = [Activity(moment, True) for moment in moments if moment <= now]
        last = sent[-1] if sent else None
        if reminder_decision(seen, now=now, policy=policy, last_reminder_at=last).send:
            sent.append(now)
        now += timedelta(hours=1)
    # A streak is a gap of at least N days between submissions (or after the last one).
    # A gap of exactly N days ends on the new submission itself, so it never becomes due.
    streaks = sum(1 for gap in gaps if gap > days * 24) + 1
    assert len(sent) == streaks
