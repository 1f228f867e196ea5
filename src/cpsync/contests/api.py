"""The contests JSON API under /api/v1: upcoming contests and platform health.

Signed-in calls use the session cookie; state-changing calls also send the session's CSRF
token in `X-CSRF-Token` (from `<meta name="csrf-token">`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cpsync.accounts.deps import CsrfProtected
from cpsync.accounts.schemas import PlatformName
from cpsync.contests.routes import upcoming_contests
from cpsync.contests.schemas import ContestOut, ContestPage, HealthOut
from cpsync.contests.service import platform_health
from cpsync.contests.views import ContestFilters, filter_contests
from cpsync.web.deps import ContextDep, ReadSessionDep

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[CsrfProtected])


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
    items = [ContestOut.of(c) for c in contests[offset : offset + limit]]
    return ContestPage(items=items, total=len(contests), limit=limit, offset=offset)


@router.get("/platforms", response_model=list[HealthOut], summary="Fetch health per platform")
async def list_platforms(context: ContextDep, session: ReadSessionDep) -> list[HealthOut]:
    return await platform_health(session, context.settings, context.clock())
