"""Credentials written into a CalDAV address (`http://alice:pw@host/...`) never rest in
clear: connecting moves them into the encrypted secret, migration 0008 moves those of
links stored before, and neither the API, the page nor the log shows them.

The calendar is a real Radicale (its `owner_only` rights let only user "alice" into
/alice/, so a sync that succeeds proves the username from the address was sent).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from cpsync.accounts.crypto import KeyRing, load_keyring
from cpsync.accounts.models import User
from cpsync.app import create_app
from cpsync.calendars.models import CalendarLink, SyncRunRow
from cpsync.db import alembic_config, create_engine, upgrade_schema
from cpsync.settings import Settings
from tests.calendars.service_support import NOW, add_contests
from tests.web.conftest import WebClient, cheap_argon2, create_user, csrf_of, make_client, sign_in

__all__ = ["cheap_argon2"]  # the fixture, applied to these tests too

PASSWORD = "S3cretAppPw"
PURPOSE = "calendar_links.secret"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        refresh_interval_minutes=0,
        http_min_interval_seconds=0,
        outbound_allow_private=True,  # Radicale on 127.0.0.1
    )


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(_settings(tmp_path), clock=lambda: NOW)
    async with application.router.lifespan_context(application):
        await add_contests(application.state.cpsync.db)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebClient]:
    await create_user(app, "ann@example.org")
    async with make_client(app) as http:
        await sign_in(http, "ann@example.org")
        yield http


async def _links(app: FastAPI) -> list[CalendarLink]:
    async with app.state.cpsync.db.session() as session:
        return list((await session.scalars(select(CalendarLink))).all())


async def _finished_runs(app: FastAPI) -> list[SyncRunRow]:
    for _ in range(400):
        async with app.state.cpsync.db.session() as session:
            runs = (await session.scalars(select(SyncRunRow))).all()
        if runs and all(run.finished_at is not None for run in runs):
            return list(runs)
        await asyncio.sleep(0.05)  # polling the run's row, not timing anything
    raise AssertionError("the sync never finished")


def _address(radicale_url: str, credentials: str) -> tuple[str, str]:
    """(the address as typed, with credentials; the same address without them)."""
    scheme, rest = radicale_url.split("://", 1)
    path = f"/alice/contests-{uuid.uuid4().hex[:8]}/"
    return f"{scheme}://{credentials}@{rest}{path}", f"{radicale_url}{path}"


async def test_credentials_in_the_address_are_encrypted_and_shown_nowhere(
    app: FastAPI, client: WebClient, radicale_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    typed, clean = _address(radicale_url, f"alice:{PASSWORD}")
    page = await client.get("/calendar/sync")
    answer = await client.post(
        "/calendar/sync/caldav",
        # What the address carries wins, as it did when the address itself went out.
        data={"url": typed, "username": "alice", "password": "other", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 303

    runs = await _finished_runs(app)
    assert [run.status for run in runs] == ["succeeded"]
    (link,) = await _links(app)
    assert link.target == clean
    assert link.username == "alice"
    assert PASSWORD not in link.secret_encrypted
    keyring: KeyRing = app.state.resources.keyring
    assert keyring.decrypt(link.secret_encrypted, PURPOSE) == PASSWORD

    listed = await client.get("/api/v1/calendars")
    assert listed.json()[0]["target"] == clean
    shown = await client.get("/calendar/sync")
    assert clean in shown.text
    assert PASSWORD not in listed.text
    assert PASSWORD not in shown.text
    # The log did record the calendar calls (so this looks at the right lines)...
    assert clean.split("://", 1)[1] in caplog.text
    # ...and not the password, anywhere.
    assert PASSWORD not in caplog.text


async def test_the_username_and_password_fields_may_stay_empty(
    app: FastAPI, client: WebClient, radicale_url: str
) -> None:
    typed, clean = _address(radicale_url, f"alice:{PASSWORD}")
    page = await client.get("/calendar/sync")
    answer = await client.post(
        "/calendar/sync/caldav", data={"url": typed, "csrf_token": csrf_of(page)}
    )
    assert answer.status_code == 303
    assert [run.status for run in await _finished_runs(app)] == ["succeeded"]
    assert [(link.target, link.username) for link in await _links(app)] == [(clean, "alice")]


async def test_a_refused_address_comes_back_without_its_password(client: WebClient) -> None:
    page = await client.get("/calendar/sync")
    answer = await client.post(
        "/calendar/sync/caldav",
        data={"url": f"ftp://alice:{PASSWORD}@dav.example/cal/", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 422
    assert "must start with https://" in answer.text
    assert 'value="ftp://dav.example/cal/"' in answer.text
    assert PASSWORD not in answer.text


def _heads_before_0008() -> list[str]:
    """Every migration head, with the one of 0008's line replaced by 0008's parent."""
    script = ScriptDirectory.from_config(alembic_config())
    heads = []
    for head in script.get_heads():
        line = {revision.revision for revision in script.iterate_revisions(head, "base")}
        heads.append("0006" if "0008" in line else head)
    return heads


async def test_stored_addresses_with_credentials_are_migrated(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    keyring = load_keyring(settings)
    engine = create_engine(settings.resolved_database_url())
    for head in _heads_before_0008():
        await upgrade_schema(engine, head)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    def link(user_id: int, target: str, username: str, secret: str) -> CalendarLink:
        return CalendarLink(
            user_id=user_id,
            kind="caldav" if "://" in target else "google",
            target=target,
            username=username,
            secret_encrypted=keyring.encrypt(secret, PURPOSE),
            created_at=NOW,
            updated_at=NOW,
        )

    async with sessions() as session, session.begin():
        user = User(email="ann@example.org", role="member", created_at=NOW, updated_at=NOW)
        session.add(user)
        await session.flush()
        session.add_all(
            [
                link(user.id, f"https://alice:{PASSWORD}@dav.example/alice/cal/", "", "typed"),
                link(user.id, "https://bob%40corp:p%3Ass@dav.example/bob/", "typed", "typed"),
                link(user.id, "https://carol@dav.example/carol/", "", "kept"),
                link(user.id, "https://dave:pw@dav.example/same/", "dave", "pw"),
                link(user.id, "https://dav.example/same/", "dave", "pw"),
                link(user.id, "primary", "", "refresh-token"),
            ]
        )

    await upgrade_schema(engine, settings=settings)

    async with sessions() as session:
        rows = (await session.scalars(select(CalendarLink).order_by(CalendarLink.id))).all()
        found = [
            (row.target, row.username, keyring.decrypt(row.secret_encrypted, PURPOSE))
            for row in rows
        ]
    await engine.dispose()
    assert found == [
        ("https://dav.example/alice/cal/", "alice", PASSWORD),
        ("https://dav.example/bob/", "bob@corp", "p:ss"),
        ("https://dav.example/carol/", "carol", "kept"),
        ("https://dav.example/same/", "dave", "pw"),
        ("primary", "", "refresh-token"),
    ]
