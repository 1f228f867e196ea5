"""One calendar sync run, sink-agnostic: read changes, plan, write, report.

The caller (the service, later) loads the desired events and the pushed-event records,
holds the user's lock, and stores what comes back: the new records, the cursor and the
run summary. `ReconnectRequiredError` and `RetriableCalendarError` propagate: the first
marks the link, the second has the service try the whole run again after a delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cpsync.calendars.plan import (
    CallResult,
    DesiredEvent,
    EventKey,
    Plan,
    PushedEvent,
    RemoteChanges,
    RunSummary,
    Tamper,
    apply_results,
    find_tampered,
    plan_sync,
    summarise,
    with_absent_as_deleted,
)


class CalendarSink(Protocol):
    async def changes(self, cursor: str | None) -> RemoteChanges: ...

    def still_ours(self, desired: DesiredEvent, record: PushedEvent, fingerprint: str) -> bool: ...

    async def apply(self, plan: Plan) -> list[CallResult]: ...


@dataclass(frozen=True, slots=True)
class SyncRun:
    plan: Plan
    results: tuple[CallResult, ...]
    records: list[PushedEvent]  # every pushed-event record after the run
    cursor: str | None  # store it for the next run's incremental read
    tampered: dict[EventKey, Tamper]
    summary: RunSummary


async def sync_calendar(
    sink: CalendarSink,
    desired: Sequence[DesiredEvent],
    pushed: Sequence[PushedEvent],
    cursor: str | None,
    *,
    check_remote: bool = True,
) -> SyncRun:
    """Make the calendar hold exactly `desired`.

    With `check_remote` the run first reads what changed in the calendar since
    `cursor` (one read when nothing did) so edits and deletions made by the user are
    restored. Without it (a sync triggered by a contest change) an unchanged user
    costs no call at all.
    """
    tampered: dict[EventKey, Tamper] = {}
    if check_remote:
        changes = await sink.changes(cursor)
        remote = with_absent_as_deleted(changes, pushed)
        tampered = find_tampered(remote, desired, pushed, sink.still_ours)
        cursor = changes.cursor
    plan = plan_sync(desired, pushed, tampered)
    results = await sink.apply(plan) if plan.writes else []
    return SyncRun(
        plan=plan,
        results=tuple(results),
        records=apply_results(pushed, plan, results),
        cursor=cursor,
        tampered=tampered,
        summary=summarise(results),
    )
