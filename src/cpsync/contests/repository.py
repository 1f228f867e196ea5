"""Every query of the contests domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.contests.merge import MergePlan, StoredContest
from cpsync.contests.models import Contest, ContestStatus, PlatformHealth
from cpsync.contests.schemas import ContestSnapshot
from cpsync.platforms.base import ParsedContest

# SQLite caps bound parameters per statement; keep bulk statements under it.
_CHUNK = 400


class ContestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def stored_for_merge(self, platform: str) -> list[StoredContest]:
        rows = await self._session.execute(
            select(
                Contest.id,
                Contest.key,
                Contest.name,
                Contest.url,
                Contest.start,
                Contest.end,
                Contest.duration_seconds,
                Contest.status,
                Contest.revision,
                Contest.missing_since,
            ).where(Contest.platform == platform)
        )
        return [StoredContest(**row._mapping) for row in rows]

    async def ending_after(self, since: datetime, platforms: Sequence[str]) -> list[Contest]:
        """Contests on these platforms that end after `since`, soonest first."""
        query = (
            select(Contest)
            .where(Contest.end > since, Contest.platform.in_(list(platforms)))
            .order_by(Contest.start, Contest.platform, Contest.key)
        )
        return list((await self._session.scalars(query)).all())

    async def snapshots_not_ended(self, now: datetime) -> list[ContestSnapshot]:
        """Every contest a calendar may still show, cancelled ones included."""
        rows = await self._session.execute(_snapshot_columns().where(Contest.end > now))
        return [ContestSnapshot(**row._mapping) for row in rows]

    async def snapshots_by_keys(self, keys: Sequence[tuple[str, str]]) -> list[ContestSnapshot]:
        found: list[ContestSnapshot] = []
        for offset in range(0, len(keys), _CHUNK):
            chunk = keys[offset : offset + _CHUNK]
            query = _snapshot_columns().where(or_(*(_contest_is(p, k) for p, k in chunk)))
            rows = await self._session.execute(query)
            found.extend(ContestSnapshot(**row._mapping) for row in rows)
        return found

    async def by_key(self, platform: str, key: str) -> Contest | None:
        return await self._session.scalar(
            select(Contest).where(Contest.platform == platform, Contest.key == key)
        )

    async def apply_merge(self, platform: str, plan: MergePlan, now: datetime) -> None:
        await self._insert_new(plan.inserts, now)
        if plan.updates:
            # ORM bulk UPDATE by primary key: one executemany per shape of change.
            rows = [{"id": u.contest_id, **u.values, "updated_at": now} for u in plan.updates]
            await self._session.execute(update(Contest), rows)
        for offset in range(0, len(plan.seen_ids), _CHUNK):
            chunk = plan.seen_ids[offset : offset + _CHUNK]
            await self._session.execute(
                update(Contest).where(Contest.id.in_(chunk)).values(last_seen_at=now)
            )

    async def _insert_new(self, contests: Sequence[ParsedContest], now: datetime) -> None:
        rows = [
            {
                "platform": c.platform,
                "key": c.key,
                "name": c.name,
                "url": c.url,
                "start": c.start,
                "end": c.end,
                "duration_seconds": c.duration_seconds,
                "status": ContestStatus.SCHEDULED,
                "revision": 1,
                "first_seen_at": now,
                "last_seen_at": now,
                "updated_at": now,
            }
            for c in contests
        ]
        if not rows:
            return
        dialect = self._session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # A concurrent refresh may have inserted the same contest; it wins, we don't fail.
        statement = insert(Contest).on_conflict_do_nothing(index_elements=["platform", "key"])
        await self._session.execute(statement, rows)

    async def not_ended(
        self,
        now: datetime,
        *,
        platforms: Sequence[str] | None = None,
        starts_before: datetime | None = None,
        include_cancelled: bool = False,
    ) -> list[Contest]:
        query = select(Contest).where(Contest.end > now)
        if platforms:
            query = query.where(Contest.platform.in_(platforms))
        if starts_before is not None:
            query = query.where(Contest.start < starts_before)
        if not include_cancelled:
            query = query.where(Contest.status == ContestStatus.SCHEDULED)
        query = query.order_by(Contest.start, Contest.platform, Contest.key)
        return list((await self._session.scalars(query)).all())

    async def prune_ended_before(self, cutoff: datetime) -> int:
        result = await self._session.execute(delete(Contest).where(Contest.end < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def health(self, platforms: Sequence[str]) -> dict[str, PlatformHealth]:
        rows = await self._session.scalars(
            select(PlatformHealth).where(PlatformHealth.platform.in_(platforms))
        )
        return {row.platform: row for row in rows}

    async def health_row(self, platform: str) -> PlatformHealth:
        row = await self._session.get(PlatformHealth, platform)
        if row is None:
            row = PlatformHealth(
                platform=platform, consecutive_failures=0, contests_seen=0, items_skipped=0
            )
            self._session.add(row)
        return row


def _snapshot_columns() -> Any:  # a Select of the ContestSnapshot columns
    return select(
        Contest.platform,
        Contest.key,
        Contest.name,
        Contest.url,
        Contest.start,
        Contest.end,
        Contest.duration_seconds,
        Contest.status,
        Contest.revision,
    )


def _contest_is(platform: str, key: str) -> ColumnElement[bool]:
    return and_(Contest.platform == platform, Contest.key == key)
