"""The scenarios every sink must pass, run against the fake Google and a real Radicale."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cpsync.calendars.plan import DesiredStatus, Outcome, PushState
from tests.calendars.conftest import Harness, expected_events, rescheduled, shown_events


async def test_first_sync_inserts_every_desired_event(harness: Harness) -> None:
    run = await harness.sync()

    assert run.summary.inserted == len(harness.desired) == 6
    assert run.summary.status == "ok"
    assert await shown_events(harness) == expected_events(harness)
    assert {r.state for r in harness.records} == {PushState.SYNCED}
    assert harness.writes() == 6


async def test_second_sync_with_nothing_changed_costs_one_read(harness: Harness) -> None:
    await harness.sync()
    await harness.sync()  # sees our own writes of the first run come back, intact
    harness.reset_counters()

    run = await harness.sync()

    assert run.plan.writes == 0
    assert run.tampered == {}
    assert harness.writes() == 0
    assert harness.reads() <= 1


async def test_sync_right_after_a_writing_run_is_also_write_free(harness: Harness) -> None:
    await harness.sync()
    harness.reset_counters()

    run = await harness.sync()

    assert (run.plan.writes, run.tampered, harness.writes(), harness.reads()) == (0, {}, 0, 1)


async def test_reschedule_is_one_update_of_the_same_event(harness: Harness) -> None:
    await harness.sync()
    ids_before = {r.event_key: r.external_id for r in harness.records}
    moved = rescheduled(harness.desired[0], timedelta(hours=3))
    harness.replace_desired(moved.key, moved)
    harness.reset_counters()

    run = await harness.sync()

    assert [r.outcome for r in run.results] == [Outcome.UPDATED]
    assert harness.writes() == 1
    shown = await shown_events(harness)
    assert shown[moved.event_key].start == moved.start
    assert len(shown) == 6  # no duplicate left at the old time
    assert {r.event_key: r.external_id for r in harness.records} == ids_before


async def test_cancellation_is_one_delete(harness: Harness) -> None:
    await harness.sync()
    gone = replace(harness.desired[3], status=DesiredStatus.CANCELLED, revision=2)
    harness.replace_desired(gone.key, gone)
    harness.reset_counters()

    run = await harness.sync()

    assert [(r.key, r.outcome) for r in run.results] == [(gone.key, Outcome.DELETED)]
    assert harness.writes() == 1
    assert gone.event_key not in await shown_events(harness)
    assert await harness.sync()
    assert harness.writes() == 1


async def test_dropped_platform_deletes_its_events(harness: Harness) -> None:
    await harness.sync()
    harness.desired = [e for e in harness.desired if e.platform != "codeforces"]
    harness.reset_counters()

    run = await harness.sync()

    assert run.summary.deleted == 3
    assert harness.writes() == 3
    assert await shown_events(harness) == expected_events(harness)


async def test_event_deleted_by_the_user_is_restored(harness: Harness) -> None:
    await harness.sync()
    victim = harness.desired[1]
    await harness.user_deletes(victim.key)  # type: ignore[attr-defined]

    run = await harness.sync()

    assert run.summary.status == "ok"
    assert run.tampered == {victim.event_key: "deleted"}
    assert await shown_events(harness) == expected_events(harness)
    harness.reset_counters()
    await harness.sync()
    await harness.sync()
    assert harness.writes() == 0  # restored once, then left alone


async def test_event_edited_by_the_user_is_restored(harness: Harness) -> None:
    await harness.sync()
    victim = harness.desired[4]
    await harness.user_edits(victim.key)  # type: ignore[attr-defined]
    harness.reset_counters()

    run = await harness.sync()

    assert run.tampered == {victim.event_key: "edited"}
    assert [r.outcome for r in run.results] == [Outcome.UPDATED]
    assert (await shown_events(harness))[victim.event_key].summary == victim.summary
    harness.reset_counters()
    await harness.sync()
    await harness.sync()
    assert harness.writes() == 0


async def test_contest_back_after_cancellation_is_recreated(harness: Harness) -> None:
    await harness.sync()
    event = harness.desired[2]
    harness.replace_desired(event.key, replace(event, status=DesiredStatus.CANCELLED, revision=2))
    await harness.sync()
    harness.replace_desired(event.key, replace(event, revision=3))

    run = await harness.sync()

    assert [r.outcome for r in run.results] == [Outcome.INSERTED]
    assert await shown_events(harness) == expected_events(harness)


async def test_new_reminder_preference_updates_every_event(harness: Harness) -> None:
    await harness.sync()
    harness.desired = [replace(e, reminders=(15,)) for e in harness.desired]
    harness.reset_counters()

    run = await harness.sync()

    assert run.summary.updated == 6
    assert run.tampered == {}  # a preference change is not mistaken for a user edit
    harness.reset_counters()
    await harness.sync()
    await harness.sync()
    assert harness.writes() == 0
