"""Google sign-in against a local fake authorization server speaking the real code flow."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cpsync.accounts import google
from cpsync.accounts.models import OAuthLink, User
from cpsync.accounts.service import REFRESH_TOKEN_PURPOSE
from cpsync.app import create_app
from cpsync.cache import MemoryCache
from cpsync.settings import Settings
from tests.accounts.fake_google import FakeGoogle, fake_google
from tests.recordings import MutableClock
from tests.web.conftest import PASSWORD, WebClient, create_user, make_client, sign_in

REDIRECT_URI = "http://127.0.0.1:8000/auth/google/callback"


@pytest.fixture
def fake() -> Iterator[FakeGoogle]:
    with fake_google(REDIRECT_URI) as server:
        yield server


@pytest.fixture
async def google_app(
    database, web_settings: Settings, clock: MutableClock, fake: FakeGoogle
) -> AsyncIterator[FastAPI]:
    # Authlib's client waits http_timeout_seconds for the fake Google; the suite's 0.5 s
    # (for replayed platforms) is too short on the loaded CI machine.
    settings = web_settings.model_copy(update={**fake.settings(), "http_timeout_seconds": 30})
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def consent(authorize_url: str, decision: str) -> str:
    """The browser's trip through Google: the consent page, then the redirect back."""
    page = httpx.get(authorize_url)
    assert page.status_code == 200, page.text
    link = re.search(rf'href="(/consent\?[^"]*decision={decision})"', page.text)
    assert link
    base = authorize_url.split("/authorize", 1)[0]
    back = httpx.get(base + link.group(1).replace("&amp;", "&"))
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return "/auth/google/callback?" + urlsplit(location).query


async def start(http: WebClient, next_url: str = "/calendar") -> str:
    answer = await http.get("/auth/google", params={"next": next_url})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["offline"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    return answer.headers["location"]


async def links(app: FastAPI) -> list[OAuthLink]:
    async with app.state.cpsync.db.session() as session:
        return list((await session.scalars(select(OAuthLink))).all())


async def test_sign_in_creates_an_account_and_keeps_the_refresh_token_encrypted(
    google_app: FastAPI, fake: FakeGoogle
) -> None:
    async with make_client(google_app) as http:
        callback = consent(await start(http, "/calendar?from=google"), "allow")
        answer = await http.get(callback)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/calendar?from=google"
        me = (await http.get("/api/v1/me")).json()
        assert me["email"] == "ada@example.com"
        assert me["role"] == "member"
    [link] = await links(google_app)
    assert link.subject == "1001"
    assert link.refresh_token_encrypted
    assert "refresh" not in link.refresh_token_encrypted
    keyring = google_app.state.resources.keyring
    assert keyring.decrypt(link.refresh_token_encrypted, REFRESH_TOKEN_PURPOSE).startswith(
        "1//refresh-"
    )
    # The token request carried the PKCE verifier and the code.
    assert fake.token_requests[-1]["code_verifier"]


async def test_links_to_an_existing_local_account_by_verified_email(google_app: FastAPI) -> None:
    local = await create_user(google_app, "ada@example.com")
    async with make_client(google_app) as http:
        await http.get(consent(await start(http), "allow"))
        assert (await http.get("/api/v1/me")).json()["id"] == local.id
    async with make_client(google_app, ip="198.51.100.4") as http:
        assert (await sign_in(http, "ada@example.com", PASSWORD)).status_code == 303
    async with google_app.state.cpsync.db.session() as session:
        assert len((await session.scalars(select(User))).all()) == 1


async def test_an_unverified_email_is_refused(google_app: FastAPI, fake: FakeGoogle) -> None:
    await create_user(google_app, "ada@example.com")
    fake.account.email_verified = False
    async with make_client(google_app) as http:
        answer = await http.get(consent(await start(http), "allow"))
        assert answer.status_code == 400
        assert "not verified" in answer.text
        assert (await http.get("/api/v1/me")).status_code == 401
    assert await links(google_app) == []


async def test_denied_consent(google_app: FastAPI) -> None:
    async with make_client(google_app) as http:
        callback = consent(await start(http), "deny")
        assert "error=access_denied" in callback
        answer = await http.get(callback)
        assert answer.status_code == 400
        assert "cancelled" in answer.text
        assert (await http.get("/api/v1/me")).status_code == 401


async def test_replayed_state_is_refused(google_app: FastAPI) -> None:
    async with make_client(google_app) as http:
        callback = consent(await start(http), "allow")
        assert (await http.get(callback)).status_code == 303
        await http.post(
            "/signout", data={"csrf_token": "x"}
        )  # irrelevant; the replay is what matters
        http.cookies.clear()
        # Put the state cookie back, as an attacker replaying the whole request would.
        state = parse_qs(urlsplit(callback).query)["state"][0]
        http.cookies.set(google.STATE_COOKIE, state, domain="testserver.local", path="/auth/google")
        replay = await http.get(callback)
        assert replay.status_code == 400
        assert "already used" in replay.text


async def test_wrong_state_is_refused(google_app: FastAPI) -> None:
    async with make_client(google_app) as http:
        callback = consent(await start(http), "allow")
        tampered = re.sub(r"state=[^&]+", "state=forged-state", callback)
        assert (await http.get(tampered)).status_code == 400
        assert (await http.get("/api/v1/me")).status_code == 401


async def test_state_from_another_browser_is_refused(google_app: FastAPI) -> None:
    async with (
        make_client(google_app) as victim,
        make_client(google_app, ip="198.51.100.8") as attacker,
    ):
        # The attacker starts a sign-in and sends the victim the callback link (login CSRF).
        callback = consent(await start(attacker), "allow")
        answer = await victim.get(callback)
        assert answer.status_code == 400
        assert (await victim.get("/api/v1/me")).status_code == 401


async def test_google_is_off_without_credentials(app: FastAPI, client: WebClient) -> None:
    assert (await client.get("/auth/google")).status_code == 404
    assert "/auth/google" not in (await client.get("/signin")).text


async def test_pending_state_expires() -> None:
    now = [0.0]
    cache = MemoryCache(monotonic=lambda: now[0])
    settings = Settings(_env_file=None, google_client_id="id", google_client_secret="secret")
    _, state = await google.begin(settings, cache, "/calendar")
    now[0] = google.STATE_TTL_SECONDS + 1
    assert await google.take_state(cache, state) is None
    _, state = await google.begin(settings, cache, "/calendar")
    assert await google.take_state(cache, state) is not None
    assert await google.take_state(cache, state) is None
