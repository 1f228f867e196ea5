"""Shared fixtures: recorded responses, databases on SQLite and PostgreSQL, settings, and
the machine's Redis and RabbitMQ.

Every service address comes from the environment (`CPSYNC_TEST_POSTGRES_DSN`,
`CPSYNC_TEST_REDIS_URL`, `CPSYNC_TEST_AMQP_URL`), and everything a run writes to Redis or
RabbitMQ lives under `run_namespace`, so two `make test` runs can share one machine.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest
import redis
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
REDIS_TEST_URL = os.environ.get("CPSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_TEST_URL = os.environ.get("CPSYNC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


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
def run_namespace() -> str:
    """This test run's own prefix for Redis keys, queues and exchanges."""
    return f"cpsync-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def queue_name(run_namespace: str) -> str:
    """A queue (and key namespace) of this test's own, inside the run's namespace."""
    return f"{run_namespace}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def redis_url(run_namespace: str) -> Iterator[str]:
    """The machine's Redis; the run's keys are deleted at the end of the session."""
    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        unavailable(f"Redis at {REDIS_TEST_URL}: {exc}")
    yield REDIS_TEST_URL
    try:
        for key in client.scan_iter(match=f"{run_namespace}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The machine's RabbitMQ (credentials and virtual host checked by connecting)."""

    async def connect() -> None:
        connection = await aio_pika.connect(AMQP_TEST_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(connect())
    except (OSError, aio_pika.exceptions.AMQPException, TimeoutError) as exc:
        unavailable(f"RabbitMQ at {AMQP_TEST_URL}: {exc!r}")
    return AMQP_TEST_URL


async def delete_rabbitmq_queues(url: str, name: str) -> None:
    """Remove what `cpsync.queue` declared on RabbitMQ for queue name `name`."""
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel()
        for queue in (f"{name}.tasks", f"{name}.tasks.delayed"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(name)
    finally:
        await connection.close()


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
        # The replay serves every platform from one host, which is then paced like
        # Codeforces' (its token bucket): one call per millisecond, not per two seconds.
        codeforces_interval_seconds=0.001,
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
