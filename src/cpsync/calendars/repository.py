"""Every query of the calendars domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.models import Preferences, User
from cpsync.calendars.models import (
    CalendarLink,
    LinkState,
    PushedEventRow,
    RequestState,
    RunStatus,
    SyncRequest,
    SyncRunRow,
)
from cpsync.calendars.plan import EventKey, PushedEvent, PushState, RunSummary

# SQLite caps bound parameters per statement; keep `IN` lists under it.
_CHUNK = 400


class CalendarRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: object) -> None:
        self._session.add(row)

    async def flush(self) -> None:
        await self._session.flush()

    # -- links ---------------------------------------------------------------------

    async def link(self, link_id: int) -> CalendarLink | None:
        return await self._session.get(CalendarLink, link_id)

    async def links_of(self, user_id: int) -> list[CalendarLink]:
        query = select(CalendarLink).where(CalendarLink.user_id == user_id)
        return list((await self._session.scalars(query.order_by(CalendarLink.id))).all())

    async def link_of(self, user_id: int, kind: str, target: str) -> CalendarLink | None:
        query = select(CalendarLink).where(
            CalendarLink.user_id == user_id,
            CalendarLink.kind == kind,
            CalendarLink.target == target,
        )
        return (await self._session.scalars(query)).first()

    async def users_with_active_links(self) -> list[int]:
        query = (
            select(CalendarLink.user_id)
            .where(CalendarLink.state == LinkState.ACTIVE)
            .distinct()
            .order_by(CalendarLink.user_id)
        )
        return list((await self._session.scalars(query)).all())

    async def user(self, user_id: int) -> User | None:
        return await self._session.get(User, user_id)

    async def preferences(self, user_id: int) -> Preferences | None:
        return await self._session.get(Preferences, user_id)

    async def preferences_of_linked_users(self) -> list[Preferences]:
        query = select(Preferences).where(
            Preferences.user_id.in_(
                select(CalendarLink.user_id).where(CalendarLink.state == LinkState.ACTIVE)
            )
        )
        return list((await self._session.scalars(query)).all())

    # -- pushed events -------------------------------------------------------------

    async def pushed(self, link_id: int) -> list[PushedEvent]:
        rows = await self._session.scalars(
            select(PushedEventRow).where(PushedEventRow.link_id == link_id)
        )
        return [_pushed(row) for row in rows]

    async def store_records(
        self, link_id: int, records: Iterable[PushedEvent], now: datetime
    ) -> None:
        """Upsert one row per `(platform, key)`; rows of other keys stay as they are."""
        rows = await self._session.scalars(
            select(PushedEventRow).where(PushedEventRow.link_id == link_id)
        )
        existing = {(row.platform, row.key): row for row in rows}
        for record in records:
            row = existing.get(record.event_key)
            if row is None:
                row = PushedEventRow(link_id=link_id, platform=record.platform, key=record.key)
                self._session.add(row)
            if _unchanged(row, record):
                continue
            row.external_id, row.revision = record.external_id, record.revision
            row.digest, row.etag = record.digest, record.etag
            row.state, row.last_error, row.updated_at = record.state, record.error, now

    async def users_with_pushed(self, keys: Sequence[EventKey]) -> set[int]:
        """Users holding a live event for any of `keys` (a contest may have to go)."""
        users: set[int] = set()
        for offset in range(0, len(keys), _CHUNK):
            chunk = keys[offset : offset + _CHUNK]
            query = (
                select(CalendarLink.user_id)
                .join(PushedEventRow, PushedEventRow.link_id == CalendarLink.id)
                .where(PushedEventRow.state != PushState.DELETED)
                .where(or_(*(_key_is(platform, key) for platform, key in chunk)))
                .distinct()
            )
            users.update((await self._session.scalars(query)).all())
        return users

    # -- runs and requests ---------------------------------------------------------

    async def recent_runs(self, link_id: int, limit: int = 5) -> list[SyncRunRow]:
        query = (
            select(SyncRunRow)
            .where(SyncRunRow.link_id == link_id)
            .order_by(SyncRunRow.started_at.desc(), SyncRunRow.id.desc())
            .limit(limit)
        )
        return list((await self._session.scalars(query)).all())

    async def finish_run(
        self, run_id: int, now: datetime, status: RunStatus, summary: RunSummary, error: str
    ) -> None:
        await self._session.execute(
            update(SyncRunRow)
            .where(SyncRunRow.id == run_id)
            .values(
                finished_at=now,
                status=status,
                inserted=summary.inserted,
                updated=summary.updated,
                deleted=summary.deleted,
                failed=summary.failed,
                error=error[:4000],
            )
        )

    async def count_attempt(self, run_id: int, attempts: int, error: str) -> None:
        """The run is trying again; `error` says why the last attempt failed."""
        await self._session.execute(
            update(SyncRunRow).where(SyncRunRow.id == run_id).values(attempts=attempts, error=error)
        )

    async def close_abandoned_runs(self, link_id: int, now: datetime, reason: str) -> None:
        await self._session.execute(
            update(SyncRunRow)
            .where(SyncRunRow.link_id == link_id, SyncRunRow.status == RunStatus.RUNNING)
            .values(status=RunStatus.FAILED, finished_at=now, error=reason)
        )

    async def request(self, request_id: str) -> SyncRequest | None:
        return await self._session.get(SyncRequest, request_id)

    async def claim_requests(self, user_id: int) -> list[str]:
        """The user's "sync now" requests not yet finished, now covered by the run
        starting: the queued ones, and those a killed run had claimed (the caller holds
        the user's lock, so no other run has them)."""
        query = select(SyncRequest.id).where(
            SyncRequest.user_id == user_id,
            SyncRequest.state.in_((RequestState.QUEUED, RequestState.RUNNING)),
        )
        ids = list((await self._session.scalars(query)).all())
        if ids:
            await self._session.execute(
                update(SyncRequest)
                .where(SyncRequest.id.in_(ids))
                .values(state=RequestState.RUNNING)
            )
        return ids

    async def users_with_stale_syncs(self, before: datetime) -> list[int]:
        """Users with sync work recorded before `before` and not finished: a "sync now"
        request still queued or running, or a run still open on an active link (a run
        on a link no longer active is not synced again, so it would stay stale)."""
        requests = select(SyncRequest.user_id).where(
            SyncRequest.state.in_((RequestState.QUEUED, RequestState.RUNNING)),
            SyncRequest.requested_at < before,
        )
        runs = (
            select(CalendarLink.user_id)
            .join(SyncRunRow, SyncRunRow.link_id == CalendarLink.id)
            .where(
                SyncRunRow.status == RunStatus.RUNNING,
                SyncRunRow.started_at < before,
                CalendarLink.state == LinkState.ACTIVE,
            )
        )
        users = set((await self._session.scalars(requests)).all())
        users.update((await self._session.scalars(runs)).all())
        return sorted(users)

    async def fail_queued_request(self, request_id: str, summary: str, now: datetime) -> None:
        """Fail a request no run has claimed yet (one a claimed request's run finishes)."""
        await self._session.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id, SyncRequest.state == RequestState.QUEUED)
            .values(state=RequestState.FAILED, summary=summary[:2000], finished_at=now)
        )

    async def finish_requests(
        self, ids: Sequence[str], state: RequestState, summary: str, now: datetime
    ) -> None:
        if ids:
            await self._session.execute(
                update(SyncRequest)
                .where(SyncRequest.id.in_(ids))
                .values(state=state, summary=summary[:2000], finished_at=now)
            )


def _key_is(platform: str, key: str) -> ColumnElement[bool]:
    return and_(PushedEventRow.platform == platform, PushedEventRow.key == key)


def _pushed(row: PushedEventRow) -> PushedEvent:
    return PushedEvent(
        platform=row.platform,
        key=row.key,
        external_id=row.external_id,
        revision=row.revision,
        state=PushState(row.state),
        etag=row.etag,
        error=row.last_error,
        digest=row.digest,
    )


def _unchanged(row: PushedEventRow, record: PushedEvent) -> bool:
    return row.id is not None and _pushed(row) == record
