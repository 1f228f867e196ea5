"""Contest pages: home (upcoming contests and platform health) and the admin's refresh.

Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.deps import AccountsDep, AdminUser, CsrfProtected, VisitorDep
from cpsync.contests.models import Contest
from cpsync.contests.repository import ContestRepository
from cpsync.contests.schemas import ContestOut
from cpsync.contests.service import platform_health, refresh_running
from cpsync.contests.tasks import REFRESH
from cpsync.contests.views import (
    ContestFilters,
    filter_contests,
)
from cpsync.platforms.registry import PLATFORMS
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep, JobsDep, ReadSessionDep
from cpsync.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])


async def upcoming_contests(session: AsyncSession, context: AppContext) -> list[Contest]:
    return await ContestRepository(session).not_ended(context.clock())


def parse_contest_filters(
    platform: list[str] | None, days: str | None, q: str | None
) -> ContestFilters:
    chosen = [name for name in dict.fromkeys(platform or []) if name in PLATFORMS]
    within = int(days) if days and days.strip().isdigit() and int(days) <= 366 else None
    return ContestFilters(platforms=chosen, days=within, q=(q or "")[:200])


@router.get("/")
async def home(
    request: Request,
    context: ContextDep,
    session: ReadSessionDep,
    accounts: AccountsDep,
    visitor: VisitorDep,
    platform: Annotated[list[str] | None, Query()] = None,
    days: str | None = None,
    q: str | None = None,
) -> Response:
    filters = parse_contest_filters(platform, days, q)
    contests = filter_contests(await upcoming_contests(session, context), filters, context.clock())
    page = {
        "nav": "home",
        "contests": [ContestOut.of(c) for c in contests],
        "health": await platform_health(session, context.settings, context.clock()),
        "filters": filters,
        "bootstrap_needed": await accounts.bootstrap_needed(),
    }
    template = "partials/contest_list.html" if request.headers.get("hx-request") else "home.html"
    return render(request, template, page)


# The admin page itself and its account actions live in cpsync.accounts.admin_routes.


@router.post("/admin/refresh")
async def admin_refresh(context: ContextDep, user: AdminUser, jobs: JobsDep) -> Response:
    # A refresh going now takes no second one: it would find nothing new.
    started = not await refresh_running(context.resources.cache)
    if started:
        jobs.enqueue(REFRESH, True)
    return RedirectResponse(f"/admin?refresh={'started' if started else 'busy'}", status_code=303)
