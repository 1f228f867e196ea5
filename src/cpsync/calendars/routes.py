"""Calendars over HTTP: the "My calendar" preferences page and its feed address, the
"Calendar sync" page (connect Google or CalDAV, "sync now"), `/api/v1/preferences`,
`/api/v1/feed`, and `POST /api/v1/sync` (202 + a job id) with `GET /api/v1/sync/{job_id}`. Thin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from cpsync.accounts.deps import AccountsDep, CsrfProtected, CurrentUser
from cpsync.accounts.models import FeedToken, Preferences, User
from cpsync.accounts.preferences import COLORS
from cpsync.accounts.schemas import FeedOut, PreferencesInput, PreferencesOut, field_errors
from cpsync.accounts.service import AccountService
from cpsync.calendars.feeds import feed_contests
from cpsync.calendars.models import CalendarLink
from cpsync.calendars.repository import CalendarRepository
from cpsync.calendars.service import CalendarLinkError
from cpsync.calendars.web import CalendarWeb, CalendarWebDep
from cpsync.contests.schemas import ContestOut
from cpsync.oauth import GoogleOAuth
from cpsync.redaction import split_userinfo
from cpsync.settings import Settings
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep, SessionDep
from cpsync.web.flash import flash_redirect
from cpsync.web.templating import render

GOOGLE_SCOPE = "https://www.googleapis.com/auth/calendar.app.created"  # least privilege
_STATE_TTL_SECONDS = 600
PAGE = "/calendar/sync"
SYNC_REQUESTED = "Sync requested: your calendars update in a moment, and the result shows below."
MAX_ID = 2**31 - 1  # what every database's INTEGER holds
LinkId = Annotated[int, Path(ge=1, le=MAX_ID)]
PREVIEW_LIMIT = 50
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in"}}
CSRF: dict[int | str, dict[str, Any]] = {403: {"description": "Missing or wrong X-CSRF-Token"}}

# HTML pages and form posts stay out of the OpenAPI schema, like the other pages.
page_router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])
api_router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[CsrfProtected])


class SyncJobOut(BaseModel):
    job_id: str
    state: str
    requested_at: datetime
    finished_at: datetime | None
    summary: str
    status_url: str


class LinkOut(BaseModel):
    id: int
    kind: str
    target: str
    state: str
    state_reason: str
    last_run_at: datetime | None
    last_status: str | None


# -- "My calendar": preferences and the feed address --------------------------------


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
        "preview": [ContestOut.of(c) for c in preview[:PREVIEW_LIMIT]],
        "flash": None,
        **feed_links(context.settings, accounts.reveal_feed_token(token_row)),
        **extra,
    }
    return render(request, "calendar.html", page, status_code=status_code)


@page_router.get("/calendar")
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


@page_router.post("/calendar")
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


@page_router.post("/calendar/feed-token")
async def regenerate_feed_token(accounts: AccountsDep, user: CurrentUser) -> Response:
    await accounts.regenerate_feed_token(user)
    return RedirectResponse("/calendar?saved=token", status_code=303)


@api_router.get("/preferences", response_model=PreferencesOut, responses=UNAUTHORIZED)
async def get_preferences(accounts: AccountsDep, user: CurrentUser) -> PreferencesOut:
    return PreferencesOut.model_validate((await accounts.preferences(user)).as_dict())


@api_router.put("/preferences", response_model=PreferencesOut, responses=UNAUTHORIZED | CSRF)
async def put_preferences(
    values: PreferencesInput, accounts: AccountsDep, user: CurrentUser
) -> PreferencesOut:
    saved = await accounts.save_preferences(user, values)
    return PreferencesOut.model_validate(saved.as_dict())


@api_router.get(
    "/feed", response_model=FeedOut, responses=UNAUTHORIZED, summary="Your ICS feed links"
)
async def get_feed(context: ContextDep, accounts: AccountsDep, user: CurrentUser) -> FeedOut:
    token = accounts.reveal_feed_token(await accounts.feed_token(user))
    return FeedOut(**feed_links(context.settings, token))


@api_router.post(
    "/feed/regenerate",
    response_model=FeedOut,
    responses=UNAUTHORIZED | CSRF,
    summary="A new feed address; the old one stops working",
)
async def regenerate_feed(context: ContextDep, accounts: AccountsDep, user: CurrentUser) -> FeedOut:
    token = accounts.reveal_feed_token(await accounts.regenerate_feed_token(user))
    return FeedOut(**feed_links(context.settings, token))


# -- pages ---------------------------------------------------------------------------


async def _links_view(session: Any, user_id: int) -> list[dict[str, Any]]:
    repository = CalendarRepository(session)
    return [
        {"link": link, "runs": await repository.recent_runs(link.id)}
        for link in await repository.links_of(user_id)
    ]


@page_router.get(PAGE, summary="Calendar sync page")
async def sync_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    page = {
        "nav": "calendar",
        "links": await _links_view(session, user.id),
        "errors": {},
        "values": {},
    }
    return render(request, "calendars/index.html", page)


@page_router.post(PAGE + "/now", summary="Sync my calendars now")
async def sync_now(
    request: Request, session: SessionDep, web: CalendarWebDep, user: CurrentUser
) -> Response:
    await _request_sync(session, web, user.id)
    return flash_redirect(request, PAGE, SYNC_REQUESTED)


async def _request_sync(session: AsyncSession, web: CalendarWeb, user_id: int) -> str:
    # The request's own session (one connection per request); the task is kicked after
    # its commit, so the run that picks it up finds the request.
    request = web.service.add_sync_request(session, user_id)
    web.queue_sync(user_id, check_remote=True, request_id=request.id)
    return request.id


@page_router.post(PAGE + "/caldav", summary="Connect a CalDAV calendar")
async def connect_caldav(
    request: Request,
    session: SessionDep,
    web: CalendarWebDep,
    user: CurrentUser,
    url: str = Form(max_length=1000),
    # May be left empty when the address carries them (`https://user:pw@host/...`).
    username: str = Form("", max_length=320),
    password: str = Form("", max_length=500),
) -> Response:
    try:
        await web.service.connect_caldav(user.id, url.strip(), username.strip(), password)
    except CalendarLinkError as exc:
        page = {
            "nav": "calendar",
            "links": await _links_view(session, user.id),
            "errors": {"caldav": exc.message},
            # The address goes back into the form without any password written into it.
            "values": {"url": split_userinfo(url.strip())[0], "username": username},
        }
        return render(request, "calendars/index.html", page, status_code=422)
    web.queue_sync(user.id)
    return RedirectResponse(PAGE, status_code=303)


@page_router.post(PAGE + "/links/{link_id}/delete", summary="Disconnect a calendar")
async def disconnect(link_id: LinkId, web: CalendarWebDep, user: CurrentUser) -> Response:
    await web.service.disconnect(user.id, link_id)
    return RedirectResponse(PAGE, status_code=303)


# -- Google: a dedicated calendar under the calendar.app.created scope -------------------


@page_router.get("/calendar/google/connect", summary="Connect Google Calendar")
async def google_connect(
    context: ContextDep, user: CurrentUser, link: Annotated[int, Query(ge=0, le=MAX_ID)] = 0
) -> Response:
    pending = {"user": user.id, "link": link}
    url, _ = await _flow(context.settings).begin(context.cache, pending)
    return RedirectResponse(str(url), status_code=303)


@page_router.get("/calendar/google/callback", include_in_schema=False)
async def google_callback(
    context: ContextDep, web: CalendarWebDep, user: CurrentUser, state: str = "", code: str = ""
) -> Response:
    pending = await _flow(context.settings).take(context.cache, state)
    if pending is None or pending["user"] != user.id or not code:
        raise CalendarLinkError("The Google connection expired; start again.")
    refresh_token = await _exchange(context.settings, code, pending["verifier"])
    if pending["link"]:
        await web.service.reconnect(user.id, int(pending["link"]), refresh_token)
    else:
        name = context.settings.calendar_name
        await web.service.connect_google(user.id, refresh_token, dedicated_name=name)
    web.queue_sync(user.id)
    return RedirectResponse(PAGE, status_code=303)


def _flow(settings: Settings) -> GoogleOAuth:
    return GoogleOAuth(settings, GOOGLE_SCOPE, "/calendar/google/callback", purpose="calendar")


async def _exchange(settings: Settings, code: str, verifier: str) -> str:
    flow = _flow(settings)
    async with flow.client() as client:
        try:
            token = await flow.exchange(client, code, verifier)
        except Exception as exc:  # Authlib raises OAuthError or plain httpx errors
            raise CalendarLinkError("Google refused the connection; try again.") from exc
    refresh = token.get("refresh_token")
    if not refresh:
        raise CalendarLinkError("Google gave no offline access; try again.")
    return str(refresh)


# -- JSON API ------------------------------------------------------------------------


@api_router.post("/sync", status_code=202, response_model=SyncJobOut, summary="Sync now")
async def api_sync(session: SessionDep, web: CalendarWebDep, user: CurrentUser) -> SyncJobOut:
    job_id = await _request_sync(session, web, user.id)
    return _job_out(await web.service.request_status(user.id, job_id, session))


@api_router.get("/sync/{job_id}", response_model=SyncJobOut, summary="A sync job's status")
async def api_sync_status(
    job_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    web: CalendarWebDep,
    user: CurrentUser,
) -> SyncJobOut:
    return _job_out(await web.service.request_status(user.id, job_id, session))


@api_router.get("/calendars", response_model=list[LinkOut], summary="My calendar links")
async def api_links(session: SessionDep, user: CurrentUser) -> list[LinkOut]:
    links = await CalendarRepository(session).links_of(user.id)
    return [_link_out(link) for link in links]


def _job_out(request: Any) -> SyncJobOut:
    return SyncJobOut(
        job_id=request.id,
        state=request.state,
        requested_at=request.requested_at,
        finished_at=request.finished_at,
        summary=request.summary,
        status_url=f"/api/v1/sync/{request.id}",
    )


def _link_out(link: CalendarLink) -> LinkOut:
    target = link.target if link.kind == "google" else link.target.split("?")[0]
    return LinkOut(
        id=link.id,
        kind=link.kind,
        target=target,
        state=link.state,
        state_reason=link.state_reason,
        last_run_at=link.last_run_at,
        last_status=link.last_status,
    )
