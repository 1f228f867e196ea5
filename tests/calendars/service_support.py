"""Helpers for the calendar service tests: users, preferences, contests, one service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from cpsync.accounts.crypto import KeyRing, generate_key_spec, parse_keys
from cpsync.accounts.models import Preferences, User
from cpsync.calendars.google import GoogleConfig
from cpsync.calendars.models import CalendarLink, PushedEventRow, SyncRunRow
from cpsync.calendars.service import CalendarOptions, CalendarService
from cpsync.contests.models import Contest, ContestStatus
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.locks import Flags, Locks

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FIRST_START = datetime(2026, 12, 5, 14, 35, tzinfo=UTC)


def keyring() -> KeyRing:
    return parse_keys(generate_key_spec("test"))


def google_config(base_url: str, token_url: str) -> GoogleConfig:
    return GoogleConfig(
        client_id="client-id",
        client_secret="client-secret",
        api_base_url=base_url,
        token_url=token_url,
        backoff_seconds=0.01,
    )


@dataclass
class ServiceKit:
    db: Database
    http: HttpClient
    keys: KeyRing
    locks: Locks
    flags: Flags
    options: CalendarOptions

    def service(self, **kwargs: Any) -> CalendarService:
        return CalendarService(
            self.db,
            self.http,
            self.keys,
            self.locks,
            self.flags,
            self.options,
            lambda: NOW,
            sleep=_no_sleep,
            **kwargs,
        )


async def _no_sleep(_seconds: float) -> None:
    return None


async def add_user(
    db: Database, email: str, platforms: Sequence[str] = ("codeforces", "atcoder")
) -> int:
    async with db.session() as session, session.begin():
        user = User(email=email, role="member", created_at=NOW, updated_at=NOW)
        session.add(user)
        await session.flush()
        session.add(
            Preferences(
                user_id=user.id,
                platforms=list(platforms),
                max_duration_hours=None,
                exclude_pattern="",
                hour_from=None,
                hour_to=None,
                weekdays=[],
                reminder_minutes=[30, 10],
                color="7",
                timezone="Asia/Kolkata",
                updated_at=NOW,
            )
        )
        return user.id


async def set_platforms(db: Database, user_id: int, platforms: Sequence[str]) -> None:
    async with db.session() as session, session.begin():
        preferences = await session.get(Preferences, user_id)
        assert preferences is not None
        preferences.platforms = list(platforms)


STARTER = [
    ("codeforces", "2050", 0),
    ("codeforces", "2051", 0),  # same start as 2050: must not collide
    ("codeforces", "2052", 1),
    ("atcoder", "abc440", 2),
    ("atcoder", "ahc060", 3),
    ("leetcode", "weekly-contest-480", 4),
]


async def add_contests(
    db: Database, specs: Sequence[tuple[str, str, int]] = tuple(STARTER)
) -> None:
    async with db.session() as session, session.begin():
        for platform, key, day in specs:
            start = FIRST_START + timedelta(days=day)
            session.add(
                Contest(
                    platform=platform,
                    key=key,
                    name=f"Round {key}",
                    url=f"https://example.org/{platform}/{key}",
                    start=start,
                    end=start + timedelta(hours=2),
                    duration_seconds=7200,
                    status=ContestStatus.SCHEDULED,
                    revision=1,
                    first_seen_at=NOW,
                    last_seen_at=NOW,
                    updated_at=NOW,
                )
            )


async def change_contest(db: Database, platform: str, key: str, **values: Any) -> None:
    """What a refresh does to a row: change it and bump the revision."""
    async with db.session() as session, session.begin():
        contest = (
            await session.scalars(
                select(Contest).where(Contest.platform == platform, Contest.key == key)
            )
        ).one()
        for name, value in values.items():
            setattr(contest, name, value)
        contest.revision += 1


async def runs_of(db: Database, link_id: int) -> list[SyncRunRow]:
    async with db.session() as session:
        query = select(SyncRunRow).where(SyncRunRow.link_id == link_id).order_by(SyncRunRow.id)
        return list((await session.scalars(query)).all())


async def link_row(db: Database, link_id: int) -> CalendarLink:
    async with db.session() as session:
        link = await session.get(CalendarLink, link_id)
        assert link is not None
        return link


async def pushed_rows(db: Database, link_id: int) -> list[PushedEventRow]:
    async with db.session() as session:
        query = select(PushedEventRow).where(PushedEventRow.link_id == link_id)
        return list((await session.scalars(query)).all())
