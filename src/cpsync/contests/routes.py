"""Contest pages: home (upcoming contests, platform health), "My calendar", the admin refresh.

Thin: parse, call a service, render."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from cpsync.accounts.deps import AccountsDep, AdminUser, CsrfProtected, CurrentUser, VisitorDep
from cpsync.accounts.models import FeedToken, Preferences, User
from cpsync.accounts.preferences import COLORS
from cpsync.accounts.schemas import PreferencesInput, field_errors
from cpsync.accounts.service import AccountService
from cpsync.contests.feeds import feed_contests
from cpsync.contests.models import Contest
from cpsync.contests.repository import ContestRepository
from cpsync.contests.schemas import HealthOut
from cpsync.contests.views import (
    ContestFilters,
    contest_view,
    filter_contests,
    health_views,
)
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep, ReadSessionDep, SessionDep
from cpsync.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])

PREVIEW_LIMIT = 50


async def upcoming_contests(session: AsyncSession, context: AppContext) -> list[Contest]:
    return await ContestRepository(session).not_ended(context.clock())


async def platform_health(session: AsyncSession, context: AppContext) -> list[HealthOut]:
    rows = await ContestRepository(session).health(list(PLATFORMS))
    settings = context.settings
    stale_after = timedelta(
        minutes=max(settings.staleness_minutes, 2 * settings.refresh_interval_minutes)
    )
    return health_views(rows, list(PLATFORMS), context.clock(), stale_after)


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
        "contests": [contest_view(c) for c in contests],
        "health": await platform_health(session, context),
        "filters": filters,
        "bootstrap_needed": await accounts.bootstrap_needed(),
    }
    template = "partials/contest_list.html" if request.headers.get("hx-request") else "home.html"
    return render(request, template, page)


def feed_links(settings: Settings, token: str) -> dict[str, str]:
    feed_url = f"{settings.public_url}/feeds/{token}.ics"
    webcal_url = "webcal://" + feed_url.split("://", 1)[1]
    subscribe = "https://calendar.google.com/calendar/render?cid=" + quote(webcal_url, safe="")
    return {"feed_url": feed_url, "webcal_url": webcal_url, "google_subscribe_url": subscribe}


async def _calendar_page(
    request: Request,
    user: User,
    context: AppContext,
    session: AsyncSession,
    accounts: AccountService,
    preferences: Preferences,
    extra: dict[str, Any],
    status_code: int = 200,
) -> Response:
    token_row: FeedToken = await accounts.feed_token(user)
    preview = await feed_contests(session, preferences, context.clock(), history=False)
    page = {
        "nav": "calendar",
        "preferences": preferences,
        "colors": COLORS,
        "errors": {},
        "values": {},
        "preview": [contest_view(c) for c in preview[:PREVIEW_LIMIT]],
        "flash": None,
        **feed_links(context.settings, accounts.reveal_feed_token(token_row)),
        **extra,
    }
    return render(request, "calendar.html", page, status_code=status_code)


@router.get("/calendar")
async def calendar(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    user: CurrentUser,
    saved: str | None = None,
) -> Response:
    preferences = await accounts.preferences(user)
    flash = {
        "1": "Your calendar preferences were saved.",
        "token": "Your feed has a new address; the old one no longer works.",
    }.get(saved or "")
    return await _calendar_page(
        request, user, context, session, accounts, preferences, {"flash": flash}
    )


def preferences_form(form: FormData, current: Preferences) -> dict[str, Any]:
    def blank_to_none(name: str) -> Any:
        value = form.get(name)
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    reminders = [v for v in form.getlist("reminder_minutes") if not isinstance(v, str) or v.strip()]
    return {
        "platforms": form.getlist("platforms"),
        "max_duration_hours": blank_to_none("max_duration_hours"),
        "exclude_pattern": form.get("exclude_pattern") or "",
        "hour_from": blank_to_none("hour_from"),
        "hour_to": blank_to_none("hour_to"),
        "weekdays": form.getlist("weekdays"),
        "reminder_minutes": reminders,
        "color": form.get("color") or current.color,
        "timezone": form.get("timezone") or current.timezone,
    }


@router.post("/calendar")
async def save_calendar(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    user: CurrentUser,
) -> Response:
    preferences = await accounts.preferences(user)
    submitted = preferences_form(await request.form(), preferences)
    try:
        values = PreferencesInput.model_validate(submitted)
    except ValidationError as exc:
        shown = {k: v for k, v in submitted.items() if isinstance(v, (str, list, type(None)))}
        extra = {"errors": field_errors(exc), "values": shown}
        return await _calendar_page(
            request, user, context, session, accounts, preferences, extra, 422
        )
    await accounts.save_preferences(user, values)
    return RedirectResponse("/calendar?saved=1", status_code=303)


@router.post("/calendar/feed-token")
async def regenerate_feed_token(accounts: AccountsDep, user: CurrentUser) -> Response:
    await accounts.regenerate_feed_token(user)
    return RedirectResponse("/calendar?saved=token", status_code=303)


# The admin page itself and its account actions live in cpsync.accounts.admin_routes.


@router.post("/admin/refresh")
async def admin_refresh(context: ContextDep, user: AdminUser) -> Response:
    started = context.scheduler.trigger()
    return RedirectResponse(f"/admin?refresh={'started' if started else 'busy'}", status_code=303)
