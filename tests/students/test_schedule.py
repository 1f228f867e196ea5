"""The friendly schedule picker over a cron expression, and zoned occurrences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cpsync.cron import CronError, check_cron
from cpsync.students.schedule import (
    Picker,
    ScheduleError,
    ZonedCronJob,
    describe,
    picker_of,
    schedule_warning,
    sync_cron,
)

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("picker", "cron"),
    [
        (Picker("daily", hour=3, minute=0), "0 3 * * *"),
        (Picker("hours", minute=15, every_hours=6), "15 */6 * * *"),
        (Picker("weekly", hour=18, minute=45, weekday=5), "45 18 * * 5"),
        (Picker("custom", custom="  0   4 1 * * "), "0 4 1 * *"),
    ],
)
def test_picker_round_trips_through_cron(picker: Picker, cron: str) -> None:
    assert picker.to_cron() == cron
    assert picker_of(cron).to_cron() == cron


@pytest.mark.parametrize(
    "picker",
    [
        Picker("daily", hour=24),
        Picker("hours", every_hours=5),
        Picker("weekly", weekday=7),
        Picker("custom", custom="61 * * * *"),
        Picker("custom", custom="* * * * * *"),
        Picker("custom", custom="0 3 30 2 *"),
        Picker("custom", custom="*/5 * * * *"),
        Picker("custom", custom=""),
        Picker("sometimes"),
    ],
)
def test_bad_choices_are_refused(picker: Picker) -> None:
    with pytest.raises(ScheduleError):
        sync_cron(picker, NOW)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 30 2 *", "This schedule never runs: February has no 30th."),
        ("0 3 31 4,6 *", "This schedule never runs: April and June have no 31st."),
        ("0 3 29 2 *", "This schedule never runs within a year (next on 29 February 2028)."),
        ("61 * * * *", "Minute must be 0-59; 61 is out of range."),
        ("0 24 * * *", "Hour must be 0-23; 24 is out of range."),
        ("0 3 * 13 *", "Month must be 1-12; 13 is out of range."),
        (
            "0 3 * *",
            "A cron expression has five fields (minute hour day month weekday), "
            "e.g. 0 3 * * *; this one has 4.",
        ),
    ],
)
def test_cron_problems_are_named(cron: str, message: str) -> None:
    with pytest.raises(CronError) as refused:
        check_cron(cron, NOW)
    assert str(refused.value) == message


def test_weekday_or_day_of_month_runs_even_on_february_30() -> None:
    # Cron runs when either the day of month or the weekday matches: Mondays in February.
    assert check_cron("0 3  30 2 mon", NOW) == "0 3 30 2 mon"


@pytest.mark.parametrize(
    ("cron", "warned"),
    [("*/15 * * * *", True), ("*/30 9-17 * * 1-5", True), ("0 * * * *", False)],
)
def test_frequent_schedules_are_accepted_with_a_warning(cron: str, warned: bool) -> None:
    assert sync_cron(Picker("custom", custom=cron), NOW) == cron
    assert (schedule_warning(cron, NOW) is not None) is warned


def test_a_burst_once_a_month_is_too_frequent() -> None:
    with pytest.raises(ScheduleError, match="at most every 15 minutes"):
        sync_cron(Picker("custom", custom="0,5 3 1 * *"), NOW)


def test_descriptions() -> None:
    assert describe("30 18 * * *", "Asia/Kolkata") == "Every day at 18:30 (Asia/Kolkata)"
    assert describe("0 */4 * * *", "UTC") == "Every 4 h at minute 0 (UTC)"
    assert describe("5 4 1 * *", "UTC") == "Cron 5 4 1 * * (UTC)"


async def fire() -> None:
    return None


def test_zoned_job_fires_at_local_time_across_dst() -> None:
    job = ZonedCronJob("students.sync:1", fire, cron="0 3 * * *", zone="Europe/Berlin")
    # 03:00 in Berlin is 01:00 UTC in summer and 02:00 UTC in winter.
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    winter = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert job.latest_occurrence(summer) == datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
    assert job.latest_occurrence(winter) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
