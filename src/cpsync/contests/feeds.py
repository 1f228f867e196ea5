"""One contest as an iCalendar download, with an ETag and Last-Modified (see
`cpsync.web.conditional`). A user's personal feed is in `cpsync.calendars.feeds`."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cpsync.contests.ics import build_calendar, rendered
from cpsync.contests.repository import ContestRepository
from cpsync.errors import CpsyncError
from cpsync.web.conditional import conditional_response
from cpsync.web.deps import ReadSessionDep

router = APIRouter(tags=["feeds"])


class ContestNotFoundError(CpsyncError):
    status_code = 404


@router.get(
    "/contests/{platform}/{key}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 304: {}, 404: {}},
    summary="One contest as an iCalendar file",
)
async def contest_ics(
    platform: str, key: str, request: Request, session: ReadSessionDep
) -> Response:
    contest = await ContestRepository(session).by_key(platform, key)
    if contest is None:
        raise ContestNotFoundError("No such contest.")
    if rendered(contest) is None:
        # An empty calendar would look like a download that worked.
        raise ContestNotFoundError("This contest's stored details cannot be offered as a calendar.")
    body = build_calendar([contest], name=contest.name)
    response = conditional_response(
        request, body, contest.updated_at, cache_control="public, max-age=600"
    )
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{platform}-{key}")[:100]
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.ics"'
    return response
