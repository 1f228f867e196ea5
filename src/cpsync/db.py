"""Database engine, sessions, the UTC datetime column type and migrations.

SQLite (the embedded default) and PostgreSQL run the same code; which one is used is
only a URL in settings.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from cpsync.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always hands back UTC-aware values.

    SQLite keeps no zone, so values come back naive there; they are UTC by
    construction, and this type says so.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Database:
    """The primary (every write, and reads when there is no replica) and any read replicas."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    replicas: tuple[async_sessionmaker[AsyncSession], ...] = ()
    _turn: Iterator[int] = field(default_factory=lambda: itertools.count())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session on the next replica in turn, or on the primary when there is none.

        Replicas lag the primary: read from them only what may be a moment stale."""
        if not self.replicas:
            async with self.session() as session:
                yield session
            return
        factory = self.replicas[next(self._turn) % len(self.replicas)]
        async with factory() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        for factory in self.replicas:
            bind = factory.kw.get("bind")
            if isinstance(bind, AsyncEngine):
                await bind.dispose()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _create_private_sqlite_file(url: str) -> None:
    """Create a missing database file readable by its owner only (its folder 0700).

    SQLite would create it 0644, and gives the -wal and -shm files the mode of the
    database file, so creating that one 0600 first keeps all three private. An existing
    file keeps the mode its operator chose.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI read while a server process writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """Connect, bringing the schema up to date first unless told not to."""
    url = settings.resolved_database_url()
    engine = create_engine(url)
    if migrate:
        await upgrade_schema(engine, settings=settings)
    replicas = tuple(
        async_sessionmaker(create_engine(replica), expire_on_commit=False)
        for replica in settings.replica_urls()
    )
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False), replicas)


def alembic_config(
    connection: Connection | None = None, settings: Settings | None = None
) -> Config:
    """`settings` reach the migrations that need more than the schema (the key ring, to
    encrypt what a data migration moves); without them such a migration reads the
    environment."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["settings"] = settings
    return config


async def upgrade_schema(
    engine: AsyncEngine, revision: str = "heads", *, settings: Settings | None = None
) -> None:
    """Apply migrations. Domains add their tables on branches from the accounts revision,
    so the target is every head."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once; one migrates, the others wait.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(726172)")
        await connection.run_sync(_run_upgrade, revision, settings)


def _run_upgrade(connection: Connection, revision: str, settings: Settings | None) -> None:
    command.upgrade(alembic_config(connection, settings), revision)
