"""The web app in-process over ASGI, on SQLite and PostgreSQL, with a frozen clock."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts import passwords
from cpsync.accounts.models import Role, User
from cpsync.accounts.service import AccountService
from cpsync.app import create_app
from cpsync.contests.models import Contest
from cpsync.db import Database
from cpsync.settings import Settings
from tests.recordings import RECORDED_AT, MutableClock

# The in-process test client (ASGI transport), not an outbound call.
WebClient = httpx.AsyncClient  # noqa: TID251
PASSWORD = "correct horse battery"
CLIENT_IP = "203.0.113.7"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id, with the smallest parameters: production costs ~0.2 s per sign-in."""
    hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    monkeypatch.setattr(passwords, "_HASHER", hasher)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", hasher.hash("no-such-user"))


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(RECORDED_AT)


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refresh_interval_minutes": 0})


@pytest.fixture
async def app(
    database: Database, web_settings: Settings, clock: MutableClock
) -> AsyncIterator[FastAPI]:
    application = create_app(web_settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def make_client(
    app: FastAPI, ip: str = CLIENT_IP, headers: dict[str, str] | None = None
) -> WebClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return WebClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebClient]:
    async with make_client(app) as http:
        yield http


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert match, "page has no csrf-token meta"
    return match.group(1)


def accounts_of(app: FastAPI, session: AsyncSession) -> AccountService:
    """The accounts service the app's routes use, on the test's own session."""
    service: AccountService = app.state.accounts.service(session, app.state.resources)
    return service


async def create_user(
    app: FastAPI, email: str, role: Role = Role.MEMBER, password: str = PASSWORD
) -> User:
    context = app.state.cpsync
    async with context.db.session() as session:
        user = await accounts_of(app, session).create_user(email, password, role)
        await session.commit()
        return user


async def sign_in(http: WebClient, email: str, password: str = PASSWORD) -> httpx.Response:
    page = await http.get("/signin")
    answer = await http.post(
        "/signin", data={"email": email, "password": password, "csrf_token": csrf_of(page)}
    )
    return answer


async def signed_in_csrf(http: WebClient) -> str:
    return csrf_of(await http.get("/"))


async def sign_in_new(
    app: FastAPI, http: WebClient, role: Role = Role.MEMBER, email: str = "ann@example.org"
) -> str:
    """Create a user, sign `http` in as them, and return the page's CSRF token."""
    await create_user(app, email, role)
    await sign_in(http, email)
    return await signed_in_csrf(http)


@asynccontextmanager
async def signed_in(app: FastAPI, email: str, role: Role = Role.COACH) -> AsyncIterator[WebClient]:
    """A new client signed in as a new user."""
    await create_user(app, email, role)
    async with make_client(app) as http:
        await sign_in(http, email)
        yield http


def form(**fields: Any) -> dict[str, Any]:
    return fields


async def add_contest(
    app: FastAPI,
    key: str,
    start: datetime,
    *,
    platform: str = "codeforces",
    name: str | None = None,
    hours: float = 2,
    status: str = "scheduled",
    updated_at: datetime | None = None,
) -> Contest:
    row = Contest(
        platform=platform,
        key=key,
        name=name or f"Round {key}",
        url=f"https://example.org/{platform}/{key}",
        start=start,
        end=start + timedelta(hours=hours),
        duration_seconds=int(hours * 3600),
        status=status,
        revision=1,
        first_seen_at=RECORDED_AT - timedelta(days=30),
        last_seen_at=RECORDED_AT,
        updated_at=updated_at or RECORDED_AT - timedelta(days=1),
    )
    async with app.state.cpsync.db.session() as session:
        session.add(row)
        await session.commit()
    return row
