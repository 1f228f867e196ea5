"""Key rotation with data under the old key, and the accounts commands of the CLI."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from cpsync.accounts.crypto import generate_key_spec, parse_keys
from cpsync.accounts.models import FeedToken, OAuthLink, Role, User
from cpsync.accounts.service import FEED_PURPOSE, REFRESH_TOKEN_PURPOSE, GoogleProfile
from cpsync.app import create_app
from cpsync.calendars.models import CalendarLink
from cpsync.cli import Runtime
from cpsync.cli import app as cli
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.web.conftest import accounts_of, make_client

runner = CliRunner()


def invoke(settings: Settings, clock: MutableClock, *args: str, input: str | None = None):
    return runner.invoke(cli, list(args), obj=Runtime(settings, clock), input=input)


async def ainvoke(settings: Settings, clock: MutableClock, *args: str, input: str | None = None):
    """The CLI runs its own event loop; from an async test, give it a thread."""
    return await asyncio.to_thread(invoke, settings, clock, *args, input=input)


async def _seed_secrets(app: FastAPI) -> tuple[str, str]:
    """A user with a feed token and a Google refresh token; returns (feed path, refresh token)."""
    context = app.state.cpsync
    async with context.db.session() as session:
        accounts = accounts_of(app, session)
        user = await accounts.sign_in_with_google(
            GoogleProfile("42", "ada@example.com", True, "Ada"),
            "1//the-refresh-token",
            "openid email",
        )
        token = accounts.reveal_feed_token(await accounts.feed_token(user))
        now = context.clock()
        session.add(
            CalendarLink(
                user_id=user.id,
                kind="caldav",
                target="https://dav.example/cal/",
                username="ada",
                secret_encrypted=context.resources.keyring.encrypt(
                    "app-password", "calendar_links.secret"
                ),
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    return f"/feeds/{token}.ics", "1//the-refresh-token"


async def test_rotate_re_encrypts_everything_under_the_newest_key(
    database, web_settings: Settings, clock: MutableClock
) -> None:
    old_spec = generate_key_spec("old")
    old_settings = web_settings.model_copy(update={"encryption_keys": old_spec})
    app = create_app(old_settings, clock=clock)
    async with app.router.lifespan_context(app):
        feed_path, refresh = await _seed_secrets(app)

    rotated_settings = web_settings.model_copy(
        update={"encryption_keys": f"{generate_key_spec('new')},{old_spec}"}
    )
    result = await ainvoke(rotated_settings, clock, "keys", "rotate")
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 secret(s) under key 'new'" in result.output
    assert "re-encrypted 0" in (await ainvoke(rotated_settings, clock, "keys", "rotate")).output

    # Only the new key is needed now, and nothing was lost.
    new_only = rotated_settings.model_copy(
        update={"encryption_keys": rotated_settings.encryption_keys.split(",")[0]}
    )
    app = create_app(new_only, clock=clock)
    async with app.router.lifespan_context(app):
        keyring = app.state.resources.keyring
        async with app.state.cpsync.db.session() as session:
            link = await session.scalar(select(OAuthLink))
            token_row = await session.scalar(select(FeedToken))
            calendar = await session.scalar(select(CalendarLink))
        assert keyring.decrypt(calendar.secret_encrypted, "calendar_links.secret") == "app-password"
        assert keyring.key_id_of(link.refresh_token_encrypted) == "new"
        assert keyring.decrypt(link.refresh_token_encrypted, REFRESH_TOKEN_PURPOSE) == refresh
        assert keyring.decrypt(token_row.token_encrypted, FEED_PURPOSE) in feed_path
        async with make_client(app) as http:
            assert (await http.get(feed_path)).status_code == 200


async def test_rotate_without_the_old_key_changes_nothing(
    database, web_settings: Settings, clock: MutableClock
) -> None:
    old_spec = generate_key_spec("old")
    app = create_app(web_settings.model_copy(update={"encryption_keys": old_spec}), clock=clock)
    async with app.router.lifespan_context(app):
        await _seed_secrets(app)
        async with app.state.cpsync.db.session() as session:
            before = (await session.scalar(select(OAuthLink))).refresh_token_encrypted
    wrong = web_settings.model_copy(update={"encryption_keys": generate_key_spec("new")})
    result = await ainvoke(wrong, clock, "keys", "rotate")
    assert result.exit_code == 2
    assert "no key 'old'" in result.output
    app = create_app(web_settings.model_copy(update={"encryption_keys": old_spec}), clock=clock)
    async with app.router.lifespan_context(app), app.state.cpsync.db.session() as session:
        assert (await session.scalar(select(OAuthLink))).refresh_token_encrypted == before


def test_rotation_covers_every_encrypted_column() -> None:
    import cpsync.models  # noqa: F401 - every table
    from cpsync.cli import encrypted_columns
    from cpsync.db import Base

    in_schema = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_encrypted")
    }
    assert in_schema == {column.name for column in encrypted_columns()}


def test_keys_generate_prints_a_usable_key(web_settings: Settings, clock: MutableClock) -> None:
    result = invoke(web_settings, clock, "keys", "generate", "--id", "k2026")
    assert result.exit_code == 0
    ring = parse_keys(result.output.strip())
    assert ring.newest_id == "k2026"


async def test_users_create_and_list(database, web_settings: Settings, clock: MutableClock) -> None:
    empty = await ainvoke(web_settings, clock, "users", "list")
    assert "cpsync users create --admin" in empty.output
    created = await ainvoke(
        web_settings,
        clock,
        "users",
        "create",
        "--email",
        "Root@Example.com",
        "--admin",
        input="a long password\na long password\n",
    )
    assert created.exit_code == 0, created.output
    assert "created admin root@example.com" in created.output
    listed = await ainvoke(web_settings, clock, "users", "list")
    assert "root@example.com" in listed.output
    assert "admin" in listed.output
    duplicate = await ainvoke(
        web_settings,
        clock,
        "users",
        "create",
        "--email",
        "root@example.com",
        "--password-stdin",
        input="a long password\n",
    )
    assert duplicate.exit_code == 2
    assert "already exists" in duplicate.output
    weak = await ainvoke(
        web_settings,
        clock,
        "users",
        "create",
        "--email",
        "x@example.com",
        "--password-stdin",
        input="short\n",
    )
    assert weak.exit_code == 2
    async with database.session() as session:
        users = (await session.scalars(select(User))).all()
    assert [(u.email, u.role) for u in users] == [("root@example.com", Role.ADMIN)]


async def test_fresh_install_tells_the_operator_on_the_sign_in_page(app: FastAPI, client) -> None:
    page = await client.get("/signin")
    assert "cpsync users create --admin" in page.text
    from tests.web.conftest import create_user

    await create_user(app, "root@example.com", Role.ADMIN)
    assert "cpsync users create --admin" not in (await client.get("/signin")).text


async def test_the_app_starting_without_accounts_logs_the_bootstrap_hint(
    database, web_settings: Settings, clock: MutableClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The app's lifespan opens the database (once per process) and says it there.
    app = create_app(web_settings, clock=clock)
    with caplog.at_level(logging.WARNING, logger="cpsync.app"):
        async with app.router.lifespan_context(app):
            pass
    assert "cpsync users create --admin" in caplog.text


def test_serve_passes_the_limits_to_uvicorn(
    database, web_settings: Settings, clock: MutableClock, monkeypatch
) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    result = invoke(web_settings, clock, "serve", "--port", "8123")
    assert result.exit_code == 0, result.output
    [options] = calls
    assert options["port"] == 8123
    assert options["host"] == "127.0.0.1"
    assert options["h11_max_incomplete_event_size"] == (
        web_settings.max_request_line_bytes + web_settings.max_header_bytes
    )
    assert options["limit_concurrency"]
    assert options["timeout_keep_alive"]
