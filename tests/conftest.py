"""Shared fixtures: recorded responses, databases on SQLite and PostgreSQL, settings."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from cpsync.db import Base, Database, open_database
from cpsync.settings import Settings
from tests.radicale_server import radicale_server
from tests.replay import ReplayServer, replay_server

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"
OWN_FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSTGRES_ADMIN_DSN = os.environ.get(
    "CPSYNC_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("CPSYNC_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail where CI demands the machine's services."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside the repository")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session."""
    name = f"cpsync_test_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL at {POSTGRES_ADMIN_DSN}: {exc}")
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with replay_server() as server:
        yield server


@pytest.fixture
def settings(database_url: str, replay: ReplayServer, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=database_url,
        http_timeout_seconds=0.5,
        http_max_retries=1,
        http_backoff_seconds=0.01,
        http_max_retry_after_seconds=1,
        http_min_interval_seconds=0,
        timezone="Asia/Kolkata",
        **replay.base_url_env(),
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The schema built by the real migrations, emptied before each test."""
    db = await open_database(settings)
    async with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(text(f'DELETE FROM "{table.name}"'))
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def radicale_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Radicale CalDAV server for the whole session, on a free port."""
    with radicale_server(tmp_path_factory.mktemp("radicale")) as url:
        yield url
