"""The app factory: `create_app(settings)` builds the whole web app from every domain's
routers and the kernel (`cpsync.web`).

The lifespan opens the process's resources once (`cpsync.worker.open_process`: every
task registered, so the embedded in-memory broker runs them here) and, in the embedded
mode, the one scheduler loop over `cpsync.scheduler.all_jobs`; both close at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import text
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from cpsync.accounts.api import router as accounts_api
from cpsync.accounts.crypto import load_keyring, load_secret_key
from cpsync.accounts.csrf import AnonymousCsrf
from cpsync.accounts.deps import AccountsWeb
from cpsync.accounts.repository import AccountRepository
from cpsync.accounts.routes import router as accounts_router
from cpsync.accounts.sessions import SessionPolicy
from cpsync.cache import Cache, CacheError
from cpsync.calendars.feeds import router as calendar_feeds
from cpsync.calendars.routes import api_router as calendar_api
from cpsync.calendars.routes import page_router as calendar_pages
from cpsync.clock import Clock, utc_now
from cpsync.contests import api, feeds
from cpsync.contests.ics import PLATFORM_LABELS
from cpsync.contests.routes import router as contest_pages
from cpsync.heartbeats import Heartbeats, expected_kinds
from cpsync.resources import Resources
from cpsync.scheduler import process_scheduler
from cpsync.settings import Settings
from cpsync.students.routes import build_router as students_router
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep
from cpsync.web.errors import install_error_handlers
from cpsync.web.flash import FlashMessages
from cpsync.web.middleware import (
    HeadAsGetMiddleware,
    PendingCookiesMiddleware,
    RateLimitMiddleware,
    RequestLimitsMiddleware,
    SecurityHeadersMiddleware,
    TimeoutMiddleware,
    trusted_hosts,
)
from cpsync.web.ratelimit import CacheWindowLimiter
from cpsync.web.templating import STATIC_DIR, create_templates
from cpsync.worker import open_process

log = logging.getLogger(__name__)

# Copied from the npm package swagger-ui-dist by `make vendor` (pinned in package-lock.json).
SWAGGER_ASSETS = "/static/vendor/swagger-ui"
REQUEST_TIMEOUT_SECONDS = 30.0


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


def create_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    # Read before the app starts: a bad key fails `create_app`, not the first request.
    secret_key = load_secret_key(settings)
    load_keyring(settings)
    policy = SessionPolicy.from_settings(settings)
    counters = _ProcessCounters()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_process(settings, clock=clock) as resources:
            counters.cache = resources.cache
            await _hint_first_admin(resources)
            app.state.resources = resources
            app.state.cpsync = AppContext(
                resources=resources,
                flash=FlashMessages(secret_key, secure=policy.secure_cookies),
                templates=create_templates({"platform_labels": PLATFORM_LABELS}),
            )
            # Embedded mode: the one job list runs here; scaled, `cpsync scheduler` runs it.
            scheduler = process_scheduler(resources)
            in_process = resources.broker.in_process
            ticking = asyncio.create_task(scheduler.run_forever()) if in_process else None
            try:
                yield
            finally:
                if ticking is not None:
                    ticking.cancel()
                    await asyncio.gather(ticking, return_exceptions=True)

    app = FastAPI(
        title="cpsync",
        version="1",
        summary="Upcoming programming contests from seven platforms, in your calendar.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    AccountsWeb(policy, AnonymousCsrf(secret_key)).install(app)
    app.include_router(contest_pages)
    app.include_router(accounts_router)
    app.include_router(accounts_api)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(calendar_feeds)
    app.include_router(calendar_pages)
    app.include_router(calendar_api)
    app.include_router(students_router(settings))
    app.include_router(_health_router())
    docs_csp = _install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_middleware(app, settings, counters, docs_csp, clock)
    return app


BOOTSTRAP_HINT = (
    "No user accounts yet. Create the first admin with: "
    "cpsync users create --admin --email you@example.com"
)


async def _hint_first_admin(resources: Resources) -> None:
    async with resources.db.session() as session:
        if await AccountRepository(session).count_users() == 0:
            log.warning(BOOTSTRAP_HINT)


class _ProcessCounters:
    """The rate limiter's counters in the process's cache. The middleware is built with
    the app, before the lifespan opens the resources, so it is handed the cache later."""

    def __init__(self) -> None:
        self.cache: Cache | None = None

    async def incr(self, key: str, ttl_seconds: float) -> int:
        if self.cache is None:
            raise CacheError("the cache is not open yet")
        return await self.cache.incr(key, ttl_seconds)


def _install_middleware(
    app: FastAPI, settings: Settings, cache: _ProcessCounters, docs_csp: str, clock: Clock
) -> None:
    # add_middleware wraps: the last added runs first.
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(PendingCookiesMiddleware)
    app.add_middleware(TimeoutMiddleware, seconds=REQUEST_TIMEOUT_SECONDS)
    app.add_middleware(
        RateLimitMiddleware,
        # The app's clock decides the window, so tests move it instead of waiting.
        limiter=CacheWindowLimiter(cache, now=lambda: clock().timestamp()),
        window_seconds=settings.rate_limit_window_seconds,
        requests=settings.rate_limit_requests,
        auth_requests=settings.rate_limit_auth_requests,
    )
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_request_line_bytes=settings.max_request_line_bytes,
    )
    app.add_middleware(
        ProxyHeadersMiddleware, trusted_hosts=trusted_hosts(settings.trusted_proxies)
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=settings.public_url.startswith("https://"),
        docs_csp=docs_csp,
    )


def _install_docs(app: FastAPI) -> str:
    """Swagger UI at /docs from our own static files (works offline), with a CSP that
    allows only this origin and the page's one inline script, named by its hash."""
    swagger = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="cpsync API",
        swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page = bytes(swagger.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Liveness, summary="The process is alive")
    async def healthz() -> Liveness:
        return Liveness(status="ok")

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness}},
        summary="Database, cache and broker are reachable; scaled, a scheduler and a worker beat",
    )
    async def readyz(context: ContextDep) -> JSONResponse:
        timeout = context.settings.readyz_timeout_seconds
        checks = {
            "database": await _check(_database_ok(context), timeout),
            "cache": await _check(context.cache.ping(), timeout),
            "broker": await _check(_broker_ok(context.settings.broker_url), timeout),
            **await _heartbeat_checks(context, timeout),
        }
        ready = all(value == "ok" for value in checks.values())
        body = Readiness(status="ok" if ready else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router


async def _check(probe: object, timeout: float) -> str:
    try:
        await asyncio.wait_for(probe, timeout=timeout)  # type: ignore[arg-type]
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def _heartbeat_checks(context: AppContext, timeout: float) -> dict[str, str]:
    """`scheduler` and `worker` when this deployment needs them (cpsync.heartbeats); one
    read of the cache's heartbeat map."""
    kinds = expected_kinds(
        broker_in_process=context.resources.broker.in_process,
        cache_url=context.settings.cache_url,
    )
    if not kinds:
        return {}
    heartbeats = Heartbeats(context.cache, context.clock, context.settings.heartbeat_seconds)
    try:
        missing = await asyncio.wait_for(heartbeats.missing(kinds), timeout=timeout)
    except Exception as exc:
        return dict.fromkeys(kinds, f"unavailable: {type(exc).__name__}")
    window = heartbeats.max_age.total_seconds()
    return {
        kind: f"missing: no {kind} heartbeat in the last {window:g} s" if kind in missing else "ok"
        for kind in kinds
    }


async def _database_ok(context: AppContext) -> None:
    async with context.db.session() as session:
        await session.execute(text("SELECT 1"))


async def _broker_ok(url: str) -> None:
    if url.startswith("memory://"):
        return
    parts = urlsplit(url)
    default_port = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}.get(parts.scheme, 0)
    _reader, writer = await asyncio.open_connection(
        parts.hostname or "127.0.0.1", parts.port or default_port
    )
    writer.close()
    await writer.wait_closed()
