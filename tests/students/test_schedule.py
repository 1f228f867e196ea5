"""The friendly schedule picker over a cron expression, and zoned occurrences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cpsync.students.schedule import Picker, ScheduleError, ZonedCronJob, describe, picker_of


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
        Picker("sometimes"),
    ],
)
def test_bad_choices_are_refused(picker: Picker) -> None:
    with pytest.raises(ScheduleError):
        picker.to_cron()


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
    assert job.next_occurrence(winter) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
