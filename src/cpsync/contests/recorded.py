"""A contest refresh recorded as a run in the `jobs` table, which /admin lists."""

from __future__ import annotations

from cpsync.clock import Clock
from cpsync.contests.merge import ChangeKind
from cpsync.contests.service import ContestService, RefreshReport
from cpsync.db import Database
from cpsync.jobs import JobState, finish_job, start_job

JOB_KIND = "contests.refresh"


async def recorded_refresh(
    db: Database, contests: ContestService, clock: Clock, *, manual: bool = False
) -> list[RefreshReport]:
    """Refresh every platform; the run is failed if any platform failed or it raised."""
    kind = JOB_KIND + (" (manual)" if manual else "")
    # Under the refresh lock (contests.tasks): a refresh still running was left by a dead one.
    job_id = await start_job(db, kind, clock(), supersedes=JOB_KIND)
    try:
        reports = await contests.refresh()
    except Exception as exc:
        await finish_job(db, job_id, JobState.FAILED, repr(exc), clock())
        raise
    state = JobState.SUCCEEDED if all(r.ok for r in reports) else JobState.FAILED
    await finish_job(db, job_id, state, summarise(reports), clock())
    return reports


def summarise(reports: list[RefreshReport]) -> str:
    parts = []
    for report in reports:
        if report.error:
            parts.append(f"{report.platform}: failed ({report.error})")
            continue
        added = report.count(ChangeKind.ADDED) + report.count(ChangeKind.RESTORED)
        changed = report.count(ChangeKind.RESCHEDULED) + report.count(ChangeKind.RENAMED)
        parts.append(
            f"{report.platform}: {added} new, {changed} changed, "
            f"{report.count(ChangeKind.CANCELLED)} cancelled, {report.unchanged} unchanged"
        )
    return "; ".join(parts)
