"""Each user's personal ICS feed, at an unguessable address.

The feed lists the user's contests after their filters (contests that ended within the last
week included, so a calendar keeps recent history), with their reminders as VALARMs. A
cancelled contest stays in the feed, as `STATUS:CANCELLED`, for seven days after it was
cancelled, so subscribed calendars hear about it. Answers carry an ETag and Last-Modified and
honour conditional requests with 304 (`cpsync.web.conditional`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.deps import AccountsWebDep
from cpsync.accounts.models import Preferences
from cpsync.accounts.preferences import matches
from cpsync.accounts.service import default_preferences, filters_of
from cpsync.contests.ics import build_calendar
from cpsync.contests.models import Contest, ContestStatus
from cpsync.contests.repository import ContestRepository
from cpsync.errors import CpsyncError
from cpsync.web.conditional import conditional_response
from cpsync.web.deps import ContextDep, ReadSessionDep

router = APIRouter(tags=["feeds"])
CANCELLED_KEPT = timedelta(days=7)
ENDED_KEPT = timedelta(days=7)


class FeedNotFoundError(CpsyncError):
    status_code = 404


async def feed_contests(
    session: AsyncSession, preferences: Preferences, now: datetime, *, history: bool = True
) -> list[Contest]:
    """The contests a user's calendar shows, soonest first."""
    since = now - ENDED_KEPT if history else now
    rows = await ContestRepository(session).ending_after(since, list(preferences.platforms))
    zone = ZoneInfo(preferences.timezone)
    filters = filters_of(preferences)
    return [
        contest
        for contest in rows
        if _kept(contest, now, history) and matches(contest, filters, zone)
    ]


def _kept(contest: Contest, now: datetime, history: bool) -> bool:
    if contest.status != ContestStatus.CANCELLED:
        return True
    return history and contest.updated_at >= now - CANCELLED_KEPT


def _latest(moments: Sequence[datetime]) -> datetime:
    return max(moments)


@router.get(
    "/feeds/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 304: {}, 404: {}},
    summary="A user's personal calendar feed",
)
async def personal_feed(
    token: str,
    request: Request,
    context: ContextDep,
    web: AccountsWebDep,
    session: ReadSessionDep,
) -> Response:
    owner = await web.service(session, context.resources).owner_of_feed_token(token)
    if owner is None:
        # Do a hit's work before answering, so the time taken says nothing about the token.
        decoy = default_preferences(0, context.clock())
        build_calendar(await feed_contests(session, decoy, context.clock()), name="")
        raise FeedNotFoundError("No feed at this address.")
    user, preferences = owner
    contests = await feed_contests(session, preferences, context.clock())
    body = build_calendar(
        contests,
        name=context.settings.calendar_name,
        reminder_minutes=preferences.reminder_minutes,
    )
    modified = _latest([preferences.updated_at, user.created_at, *(c.updated_at for c in contests)])
    return conditional_response(request, body, modified, cache_control="private, max-age=300")
