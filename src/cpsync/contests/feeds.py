"""ICS downloads: one contest, and each user's personal feed.

The personal feed lists the user's contests after their filters (contests that ended within
the last week included, so a calendar keeps recent history), with their reminders as
VALARMs. A cancelled contest stays in the feed, as `STATUS:CANCELLED`, for seven days after
it was cancelled, so subscribed calendars hear about it. Answers carry an ETag (a hash of
the body, which is a pure function of the data) and Last-Modified, and honour conditional
requests with 304.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.models import Preferences
from cpsync.accounts.preferences import matches
from cpsync.accounts.service import default_preferences, filters_of
from cpsync.contests.ics import build_calendar
from cpsync.contests.models import Contest, ContestStatus
from cpsync.contests.repository import ContestRepository
from cpsync.errors import CpsyncError
from cpsync.web.deps import ContextDep, ReadSessionDep

router = APIRouter(tags=["feeds"])
CANCELLED_KEPT = timedelta(days=7)
ENDED_KEPT = timedelta(days=7)
ICS_TYPE = "text/calendar; charset=utf-8"


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


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def calendar_response(
    request: Request, body: bytes, modified: datetime, *, cache_control: str
) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": _http_date(modified),
        "Cache-Control": cache_control,
    }
    if _not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=ICS_TYPE, headers=headers)


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if not since:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return moment.tzinfo is not None and modified.replace(microsecond=0) <= moment


def _latest(moments: Sequence[datetime]) -> datetime:
    return max(moments)


@router.get(
    "/feeds/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 304: {}, 404: {}},
    summary="A user's personal calendar feed",
)
async def personal_feed(
    token: str, request: Request, context: ContextDep, session: ReadSessionDep
) -> Response:
    owner = await context.accounts(session).owner_of_feed_token(token)
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
    return calendar_response(request, body, modified, cache_control="private, max-age=300")


@router.get(
    "/contests/{platform}/{key}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 304: {}, 404: {}},
    summary="One contest as an iCalendar file",
)
async def contest_ics(
    platform: str, key: str, request: Request, context: ContextDep, session: ReadSessionDep
) -> Response:
    contest = await ContestRepository(session).by_key(platform, key)
    if contest is None:
        raise FeedNotFoundError("No such contest.")
    body = build_calendar([contest], name=contest.name)
    response = calendar_response(
        request, body, contest.updated_at, cache_control="public, max-age=600"
    )
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{platform}-{key}")[:100]
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.ics"'
    return response
