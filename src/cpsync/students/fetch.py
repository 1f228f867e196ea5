"""The Codeforces calls one planned student needs, driven by the pure planner.

The database side (what to store, when to move `last_synced_at`) belongs to the sync
service; this module only talks to Codeforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cpsync.students.codeforces_api import RatingChange, Submission
from cpsync.students.planner import (
    PageRequest,
    PagingConfig,
    SettledSubmissions,
    StudentPlan,
    first_status_page,
    next_status_page,
    settle_submissions,
)


class StudentCalls(Protocol):
    """The part of `CodeforcesClient` a student fetch uses."""

    async def user_status(self, handle: str, from_: int, count: int) -> list[Submission]: ...

    async def user_rating(self, handle: str) -> list[RatingChange]: ...


@dataclass(frozen=True, slots=True)
class StudentUpdate:
    submissions: SettledSubmissions | None  # None: user.status was not needed
    ratings: Sequence[RatingChange] | None  # None: user.rating was not needed; else all of it


async def fetch_new_submissions(
    client: StudentCalls, handle: str, newest_stored_id: int | None, config: PagingConfig
) -> SettledSubmissions:
    """Page `user.status` from the newest down to the first stored submission."""
    request: PageRequest | None = first_status_page(newest_stored_id, config)
    fetched: list[Submission] = []
    while request is not None:
        page = await client.user_status(handle, request.from_, request.count)
        step = next_status_page(request, page, newest_stored_id, config)
        fetched.extend(step.fresh)
        request = step.next_page
    return settle_submissions(fetched, newest_stored_id)


async def fetch_student(
    client: StudentCalls, plan: StudentPlan, newest_stored_id: int | None, config: PagingConfig
) -> StudentUpdate:
    """Only the calls the plan asks for, under the student's current handle."""
    submissions = (
        await fetch_new_submissions(client, plan.handle, newest_stored_id, config)
        if plan.fetch_status
        else None
    )
    ratings = await client.user_rating(plan.handle) if plan.fetch_rating else None
    return StudentUpdate(submissions, ratings)
