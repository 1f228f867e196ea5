"""Each occurrence of a job fires once per deployment, with several schedulers running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cpsync.cron import valid_cron
from cpsync.locks import MemoryLocks
from cpsync.scheduler import ScheduledJob, Scheduler
from tests.recordings import MutableClock


def counting_job(fired: list[str], name: str, **schedule: object) -> ScheduledJob:
    async def fire() -> None:
        fired.append(name)

    return ScheduledJob(name, fire, **schedule)  # type: ignore[arg-type]


def schedulers(count: int, clock: MutableClock, jobs: list[ScheduledJob]) -> list[Scheduler]:
    shared = MemoryLocks()  # stands for the deployment's Redis

    async def source() -> list[ScheduledJob]:
        return jobs

    return [Scheduler(shared, clock, source) for _ in range(count)]


async def test_three_schedulers_fire_each_occurrence_once() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 3, 0, 5, tzinfo=UTC))
    fired: list[str] = []
    jobs = [
        counting_job(fired, "refresh", every=timedelta(minutes=30)),
        counting_job(fired, "daily", cron="0 3 * * *"),
    ]
    group = schedulers(3, clock, jobs)
    for _ in range(4):  # many ticks within the same occurrence
        for scheduler in group:
            await scheduler.tick()
    assert sorted(fired) == ["daily", "refresh"]
    clock.advance(timedelta(minutes=30))
    for scheduler in group:
        await scheduler.tick()
    assert sorted(fired) == ["daily", "refresh", "refresh"]


async def test_missed_occurrence_beyond_grace_is_skipped() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 3, 11, tzinfo=UTC))
    fired: list[str] = []
    (scheduler,) = schedulers(1, clock, [counting_job(fired, "daily", cron="0 3 * * *")])
    assert await scheduler.tick() == []
    assert fired == []


async def test_edited_schedule_takes_effect_on_the_next_tick() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 9, 30, 1, tzinfo=UTC))
    fired: list[str] = []
    jobs = [counting_job(fired, "students", cron="0 3 * * *")]
    (scheduler,) = schedulers(1, clock, jobs)
    await scheduler.tick()
    assert fired == []
    jobs[0] = counting_job(fired, "students", cron="30 9 * * *")
    await scheduler.tick()
    assert fired == ["students"]


async def test_a_failing_job_does_not_stop_the_others() -> None:
    clock = MutableClock(datetime(2026, 11, 22, 3, 0, tzinfo=UTC))
    fired: list[str] = []

    async def broken() -> None:
        raise RuntimeError("boom")

    jobs = [
        ScheduledJob("broken", broken, every=timedelta(hours=1)),
        counting_job(fired, "ok", every=timedelta(hours=1)),
    ]
    (scheduler,) = schedulers(1, clock, jobs)
    assert len(await scheduler.tick()) == 2
    assert fired == ["ok"]


@pytest.mark.parametrize(
    ("expression", "ok"),
    [("0 3 * * *", True), ("*/15 * * * 1-5", True), ("61 * * * *", False), ("daily", False)],
)
def test_cron_validation(expression: str, ok: bool) -> None:
    assert valid_cron(expression) is ok
