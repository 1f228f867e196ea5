"""The JSON API under /api/v1: contests, platform health, me, preferences, feed token.

Signed-in calls use the session cookie; state-changing calls also send the session's CSRF
token in `X-CSRF-Token` (from `<meta name="csrf-token">`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cpsync.accounts.deps import AccountsDep, CsrfProtected, CurrentUser
from cpsync.accounts.schemas import FeedOut, MeOut, PlatformName, PreferencesInput, PreferencesOut
from cpsync.contests.routes import feed_links, platform_health, upcoming_contests
from cpsync.contests.schemas import ContestPage, HealthOut
from cpsync.contests.views import ContestFilters, contest_view, filter_contests
from cpsync.web.deps import ContextDep, ReadSessionDep

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[CsrfProtected])


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in"}}
CSRF: dict[int | str, dict[str, Any]] = {403: {"description": "Missing or wrong X-CSRF-Token"}}


@router.get("/contests", response_model=ContestPage, summary="Upcoming contests")
async def list_contests(
    context: ContextDep,
    session: ReadSessionDep,
    platform: Annotated[list[PlatformName] | None, Query(description="Repeatable")] = None,
    days: Annotated[int | None, Query(ge=0, le=366, description="Starting within N days")] = None,
    q: Annotated[str, Query(max_length=200, description="Text in the name")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ContestPage:
    filters = ContestFilters(platforms=list(platform or []), days=days, q=q)
    contests = filter_contests(await upcoming_contests(session, context), filters, context.clock())
    items = [contest_view(c) for c in contests[offset : offset + limit]]
    return ContestPage(items=items, total=len(contests), limit=limit, offset=offset)


@router.get("/platforms", response_model=list[HealthOut], summary="Fetch health per platform")
async def list_platforms(context: ContextDep, session: ReadSessionDep) -> list[HealthOut]:
    return await platform_health(session, context)


@router.get("/me", response_model=MeOut, responses=UNAUTHORIZED, summary="The signed-in user")
async def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user, from_attributes=True)


@router.get("/preferences", response_model=PreferencesOut, responses=UNAUTHORIZED)
async def get_preferences(accounts: AccountsDep, user: CurrentUser) -> PreferencesOut:
    return PreferencesOut.model_validate((await accounts.preferences(user)).as_dict())


@router.put("/preferences", response_model=PreferencesOut, responses=UNAUTHORIZED | CSRF)
async def put_preferences(
    values: PreferencesInput, accounts: AccountsDep, user: CurrentUser
) -> PreferencesOut:
    saved = await accounts.save_preferences(user, values)
    return PreferencesOut.model_validate(saved.as_dict())


@router.get("/feed", response_model=FeedOut, responses=UNAUTHORIZED, summary="Your ICS feed links")
async def get_feed(context: ContextDep, accounts: AccountsDep, user: CurrentUser) -> FeedOut:
    token = accounts.reveal_feed_token(await accounts.feed_token(user))
    return FeedOut(**feed_links(context.settings, token))


@router.post(
    "/feed/regenerate",
    response_model=FeedOut,
    responses=UNAUTHORIZED | CSRF,
    summary="A new feed address; the old one stops working",
)
async def regenerate_feed(context: ContextDep, accounts: AccountsDep, user: CurrentUser) -> FeedOut:
    token = accounts.reveal_feed_token(await accounts.regenerate_feed_token(user))
    return FeedOut(**feed_links(context.settings, token))
