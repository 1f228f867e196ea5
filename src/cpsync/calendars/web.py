"""What calendar routes depend on: the service, built from the process's `Resources`,
and the request's job list, on which syncs are queued for after the commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from cpsync.calendars.config import calendar_service
from cpsync.calendars.service import CalendarService
from cpsync.calendars.tasks import SYNC_USER
from cpsync.queue import JobQueue
from cpsync.web.deps import JobsDep, ResourcesDep


@dataclass(slots=True)
class CalendarWeb:
    service: CalendarService
    jobs: JobQueue

    def queue_sync(
        self, user_id: int, *, check_remote: bool = False, request_id: str | None = None
    ) -> None:
        """`calendars.sync_user`, kicked once the request committed; the "sync now"
        request it serves fails at once if the kick does."""

        async def not_queued() -> None:
            if request_id is not None:
                await self.service.request_not_queued(request_id)

        self.jobs.enqueue(SYNC_USER, user_id, check_remote, on_unsent=not_queued)


def get_calendar_web(resources: ResourcesDep, jobs: JobsDep) -> CalendarWeb:
    return CalendarWeb(calendar_service(resources), jobs)


CalendarWebDep = Annotated[CalendarWeb, Depends(get_calendar_web)]
