"""Wiring for entry points: settings, clock, database and HTTP client, opened together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cpsync.clock import Clock, utc_now
from cpsync.contests.service import ContestService
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings = field(default_factory=Settings)
    clock: Clock = utc_now


@dataclass(frozen=True)
class Services:
    db: Database
    http: HttpClient
    contests: ContestService


@asynccontextmanager
async def open_services(runtime: Runtime) -> AsyncIterator[Services]:
    db = await open_database(runtime.settings)
    try:
        async with HttpClient(runtime.settings) as http:
            contests = ContestService(db, http, runtime.settings, runtime.clock)
            yield Services(db, http, contests)
    finally:
        await db.dispose()
