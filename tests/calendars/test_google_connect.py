"""Connecting Google Calendar through the real authorization-code flow with PKCE.

The app redirects to Google's authorize endpoint; the test plays the user consenting
there (the fake issues a code bound to the PKCE challenge), then follows the redirect
back. The code exchange, the refresh and the dedicated calendar's creation all go to the
faithful fake Google.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cpsync.app import create_app
from cpsync.calendars.models import CalendarLink
from cpsync.settings import Settings
from tests.calendars.fake_google import FakeGoogleServer
from tests.calendars.service_support import NOW
from tests.web.conftest import WebClient, cheap_argon2, create_user, make_client, sign_in

__all__ = ["cheap_argon2"]
CALLBACK = "http://127.0.0.1:8000/calendar/google/callback"


@pytest.fixture
async def app(tmp_path: Path, google_server: FakeGoogleServer) -> AsyncIterator[FastAPI]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        refresh_interval_minutes=0,
        http_min_interval_seconds=0,
        google_client_id=google_server.fake.client_id,
        google_client_secret=google_server.fake.client_secret,
        google_authorize_url=f"{google_server.base_url}/o/oauth2/v2/auth",
        google_token_url=google_server.token_url,
        google_api_base_url=google_server.base_url,
    )
    application = create_app(settings, clock=lambda: NOW)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebClient]:
    await create_user(app, "ann@example.org")
    async with make_client(app) as http:
        await sign_in(http, "ann@example.org")
        yield http


async def start(client: WebClient) -> dict[str, str]:
    answer = await client.get("/calendar/google/connect")
    assert answer.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    assert query["redirect_uri"] == CALLBACK
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert query["scope"] == "https://www.googleapis.com/auth/calendar.app.created"
    return query


async def links(app: FastAPI) -> list[CalendarLink]:
    async with app.state.cpsync.db.session() as session:
        return list((await session.scalars(select(CalendarLink))).all())


async def test_consent_links_a_dedicated_calendar(
    app: FastAPI, client: WebClient, google_server: FakeGoogleServer
) -> None:
    query = await start(client)
    code = google_server.fake.grant_code(query["code_challenge"], CALLBACK)
    back = await client.get(f"/calendar/google/callback?state={query['state']}&code={code}")
    assert back.status_code == 303
    assert back.headers["location"].endswith("/calendar/sync")
    (link,) = await links(app)
    assert link.kind == "google"
    assert link.target in google_server.fake.calendars  # the dedicated calendar was made
    assert link.target != "primary"
    assert "refresh-" not in (link.secret_encrypted or "")  # stored encrypted

    replay = await client.get(f"/calendar/google/callback?state={query['state']}&code={code}")
    assert replay.status_code >= 400  # the state was single-use
    assert len(await links(app)) == 1


async def test_denied_consent_links_nothing(app: FastAPI, client: WebClient) -> None:
    query = await start(client)
    denied = await client.get(
        f"/calendar/google/callback?state={query['state']}&error=access_denied"
    )
    assert denied.status_code >= 400
    assert await links(app) == []


async def test_wrong_state_or_stolen_code_links_nothing(
    app: FastAPI, client: WebClient, google_server: FakeGoogleServer
) -> None:
    query = await start(client)
    code = google_server.fake.grant_code(query["code_challenge"], CALLBACK)
    wrong = await client.get(f"/calendar/google/callback?state=forged&code={code}")
    assert wrong.status_code >= 400
    # A code granted for another PKCE challenge is refused by the token endpoint.
    other = await start(client)
    stolen = google_server.fake.grant_code("x" * 43, CALLBACK)
    refused = await client.get(f"/calendar/google/callback?state={other['state']}&code={stolen}")
    assert refused.status_code >= 400
    assert await links(app) == []
