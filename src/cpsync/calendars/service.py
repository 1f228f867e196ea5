"""Calendar sync use cases: connect calendars, request and run syncs, fan out changes.

`sync_user` holds the user's lock (owner token, expiry, coalescing: see
`cpsync.locks.run_coalesced`), builds the desired events from contests x preferences,
runs `sync_calendar` per active link, and stores the records, cursor and run result.
Sessions are committed here only at the edges of a run (load, then store per link);
the caller enqueues follow-up work after those commits.

Every run ends in a final state with its reason: one history row per link and run,
opened "running" and closed whatever happens (an unavailable calendar is retried with
backoff on that same row, counting attempts; an unexpected error is logged with its
traceback and closes the run as failed with a fixed message), and every claimed
"sync now" request is finished.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.crypto import KeyRing
from cpsync.accounts.models import Preferences
from cpsync.accounts.service import filters_of
from cpsync.calendars.caldav import CalDavConfig, CalDavSink
from cpsync.calendars.desired import EventStyle, desired_events, zone_of
from cpsync.calendars.errors import (
    CalendarError,
    PermanentCalendarError,
    ReconnectRequiredError,
    RefusedAddressError,
    RetriableCalendarError,
)
from cpsync.calendars.google import GoogleAuth, GoogleCalendarSink, GoogleConfig, GoogleToken
from cpsync.calendars.models import (
    CalendarLink,
    LinkKind,
    LinkState,
    Notification,
    RequestState,
    RunStatus,
    SyncRequest,
    SyncRunRow,
)
from cpsync.calendars.plan import DesiredEvent, EventKey, RunSummary
from cpsync.calendars.repository import CalendarRepository
from cpsync.calendars.sync import CalendarSink, SyncRun, sync_calendar
from cpsync.calendars.transport import RawHttp
from cpsync.clock import Clock
from cpsync.contests.repository import ContestRepository
from cpsync.contests.schemas import ContestSnapshot
from cpsync.db import Database
from cpsync.errors import CpsyncError
from cpsync.http import Sleep
from cpsync.locks import Flags, Locks, new_owner, run_coalesced
from cpsync.redaction import split_userinfo

log = logging.getLogger(__name__)
T = TypeVar("T")

_REFRESH_PURPOSE = "calendar_links.secret"
_ACCESS_PURPOSE = "calendar_links.access_token"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CREDENTIALS_REFUSED = "The calendar server refused that username or app password."
_NOT_CONNECTED = "Could not connect to that calendar. Check the address and try again."
_UNEXPECTED = "The sync stopped on an unexpected error; it was logged for the operator."
_INTERRUPTED = "The sync was interrupted before it finished; it runs again on the next sync."
_NOT_QUEUED = "The sync could not be queued (the task queue was unavailable); try again."


class CalendarLinkError(CpsyncError):
    """A calendar could not be connected: wrong URL, refused credentials."""

    status_code = 422


class SyncRequestNotFoundError(CpsyncError):
    status_code = 404


@dataclass(frozen=True, slots=True)
class CalendarOptions:
    google: GoogleConfig
    lock_ttl_seconds: float = 120.0
    caldav_backoff_seconds: float = 1.0
    # How often a request coalesced behind a dead holder checks whether it may run.
    wait_poll_seconds: float = 0.5
    # Deployments sharing one Redis keep their user locks apart (the queue name).
    lock_prefix: str = "cpsync"
    # An unavailable calendar: retries within the run, `retry_delay_seconds` x attempt apart.
    sync_retries: int = 5
    retry_delay_seconds: float = 5.0
    max_retry_delay_seconds: float = 300.0


class Notifier:
    """Owes users a message: recorded in `calendar_notifications`, emailed by
    `cpsync.calendars.notifications.deliver_pending` after the sync task."""

    async def reconnect_needed(self, repository: CalendarRepository, link: CalendarLink) -> None:
        repository.add(
            Notification(
                user_id=link.user_id,
                link_id=link.id,
                kind="reconnect_needed",
                subject="cpsync: reconnect your calendar",
                body=(
                    f"cpsync can no longer write to your {link.kind} calendar "
                    f"({link.state_reason}). Sign in and reconnect it on the calendar page; "
                    "until then it is not updated."
                ),
                created_at=link.updated_at,
            )
        )


@dataclass(frozen=True, slots=True)
class LinkResult:
    link_id: int
    status: RunStatus
    summary: RunSummary
    error: str = ""


@dataclass(slots=True)
class UserRunResult:
    user_id: int
    links: list[LinkResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(link.status == RunStatus.SUCCEEDED for link in self.links)

    def describe(self) -> str:
        parts = [
            f"link {r.link_id}: {r.status} (+{r.summary.inserted} ~{r.summary.updated} "
            f"-{r.summary.deleted} !{r.summary.failed}){' ' + r.error if r.error else ''}"
            for r in self.links
        ]
        return "; ".join(parts) or "no calendar connected"


class CalendarService:
    def __init__(
        self,
        db: Database,
        http: RawHttp,
        keyring: KeyRing,
        locks: Locks,
        flags: Flags,
        options: CalendarOptions,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        notifier: Notifier | None = None,
    ) -> None:
        self._db = db
        self._http = http
        self._keyring = keyring
        self._locks = locks
        self._flags = flags
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._notifier = notifier or Notifier()

    # -- connecting ----------------------------------------------------------------

    async def connect_google(
        self, user_id: int, refresh_token: str, *, dedicated_name: str | None = None
    ) -> int:
        """Link a Google calendar: the primary one, or a new dedicated calendar."""
        target = "primary"
        if dedicated_name:
            link = self._new_link(user_id, LinkKind.GOOGLE, "primary", "", refresh_token)
            sink, auth = self._google_sink(link)
            target = await _connect_call(sink.create_calendar(dedicated_name))
            await self._db_store_link(user_id, LinkKind.GOOGLE, target, "", refresh_token, auth)
        else:
            await self._db_store_link(user_id, LinkKind.GOOGLE, target, "", refresh_token, None)
        return await self._link_id(user_id, LinkKind.GOOGLE, target)

    async def connect_caldav(self, user_id: int, url: str, username: str, password: str) -> int:
        """Link a CalDAV collection after one test request proves the credentials.

        Credentials written into the address (`https://user:pw@host/...`) are taken out
        of it and stored like entered ones, in preference to them: the stored address
        holds no secret."""
        if not url.startswith(("https://", "http://")):
            raise CalendarLinkError("The CalDAV address must start with https://")
        url, url_username, url_password = split_userinfo(url)
        username = url_username or username
        password = password if url_password is None else url_password
        link = self._new_link(user_id, LinkKind.CALDAV, url, username, password)
        await _connect_call(self._probe_caldav(self._caldav_sink(link)))
        await self._db_store_link(user_id, LinkKind.CALDAV, url, username, password, None)
        return await self._link_id(user_id, LinkKind.CALDAV, url)

    async def reconnect(self, user_id: int, link_id: int, secret: str) -> None:
        """New credentials for an existing link (after `invalid_grant`): active again."""
        async with self._db.session() as session:
            link = await CalendarRepository(session).link(link_id)
        if link is None or link.user_id != user_id:
            raise CalendarLinkError("No such calendar link.")
        kind = LinkKind(link.kind)
        if kind == LinkKind.CALDAV:
            probe = self._new_link(user_id, kind, link.target, link.username, secret)
            await _connect_call(self._probe_caldav(self._caldav_sink(probe)))
        await self._db_store_link(user_id, kind, link.target, link.username, secret, None)

    async def _probe_caldav(self, sink: CalDavSink) -> None:
        """One read proves URL and password; a missing collection is created once."""
        try:
            await sink.changes(None)
        except (ReconnectRequiredError, RefusedAddressError):
            raise
        except PermanentCalendarError:
            await sink.create_calendar("Programming contests (cpsync)")
            await sink.changes(None)

    async def disconnect(self, user_id: int, link_id: int) -> None:
        async with self._db.session() as session, session.begin():
            link = await CalendarRepository(session).link(link_id)
            if link is not None and link.user_id == user_id:
                await session.delete(link)

    def _new_link(
        self, user_id: int, kind: LinkKind, target: str, username: str, secret: str
    ) -> CalendarLink:
        now = self._clock()
        return CalendarLink(
            user_id=user_id,
            kind=kind,
            target=target,
            username=username,
            secret_encrypted=self._keyring.encrypt(secret, _REFRESH_PURPOSE),
            state=LinkState.ACTIVE,
            state_reason="",
            created_at=now,
            updated_at=now,
        )

    async def _db_store_link(
        self,
        user_id: int,
        kind: LinkKind,
        target: str,
        username: str,
        secret: str,
        auth: GoogleAuth | None,
    ) -> None:
        """Create the link, or revive an existing one with fresh credentials (reconnect)."""
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            link = await repository.link_of(user_id, kind, target)
            if link is None:
                link = self._new_link(user_id, kind, target, username, secret)
                repository.add(link)
            link.username = username
            link.secret_encrypted = self._keyring.encrypt(secret, _REFRESH_PURPOSE)
            link.access_token_encrypted, link.access_expires_at = None, None
            link.state, link.state_reason = LinkState.ACTIVE, ""
            link.reconnect_notified_at, link.updated_at = None, self._clock()
            if auth is not None:
                self._keep_token(link, auth)

    async def _link_id(self, user_id: int, kind: LinkKind, target: str) -> int:
        async with self._db.session() as session:
            link = await CalendarRepository(session).link_of(user_id, kind, target)
            assert link is not None
            return link.id

    # -- "sync now" requests -------------------------------------------------------

    def add_sync_request(self, session: AsyncSession, user_id: int) -> SyncRequest:
        """Record a "sync now" in the caller's session; the caller enqueues
        `calendars.sync_user` for after its commit (a run claims every queued request)."""
        request = SyncRequest(
            id=secrets.token_hex(16),
            user_id=user_id,
            state=RequestState.QUEUED,
            requested_at=self._clock(),
            summary="",
        )
        session.add(request)
        return request

    async def request_not_queued(self, request_id: str) -> None:
        """The request's task never reached the queue (its kick failed after the commit):
        fail the request now, rather than leave it queued for a run that never comes."""
        async with self._db.session() as session, session.begin():
            await CalendarRepository(session).fail_queued_request(
                request_id, _NOT_QUEUED, self._clock()
            )

    async def request_status(
        self, user_id: int, request_id: str, session: AsyncSession | None = None
    ) -> SyncRequest:
        if session is None:
            async with self._db.session() as own:
                return await self.request_status(user_id, request_id, own)
        request = await CalendarRepository(session).request(request_id)
        if request is None or request.user_id != user_id:
            raise SyncRequestNotFoundError("No such sync job.")
        return request

    # -- syncing -------------------------------------------------------------------

    def lock_name(self, user_id: int) -> str:
        return f"{self._options.lock_prefix}:calendar-sync:{user_id}"

    async def sync_user(self, user_id: int, *, check_remote: bool = False) -> int:
        """Sync every active link of the user; returns how many runs this call did.

        A request arriving while a run goes is folded into at most one more run. If the
        holder died (kill -9) its lock expires after the TTL; this call then waits for
        that and runs itself, so a redelivered task never leaves a request unserved.
        An unavailable calendar is retried inside the run (see `_sync_attempts`), so the
        task does not fail for it: a queue retry would add a run per attempt.
        """

        async def work() -> None:
            await self._run(user_id, check_remote)

        return await run_coalesced(
            self._locks,
            self._flags,
            self.lock_name(user_id),
            work,
            self._options.lock_ttl_seconds,
            wait_poll_seconds=self._options.wait_poll_seconds,
        )

    async def stale_syncs(self, stale_after: timedelta) -> list[int]:
        """Users whose sync was asked for or started more than `stale_after` ago and has
        not finished, with no live run holding their lock: the task carrying it was lost
        (a broker that lost its messages in an outage, a worker stopped mid-run). A new
        `sync_user` adopts what such a run left queued or running."""
        before = self._clock() - stale_after
        async with self._db.session() as session:
            users = await CalendarRepository(session).users_with_stale_syncs(before)
        return [user_id for user_id in users if not await self._sync_live(user_id)]

    async def _sync_live(self, user_id: int) -> bool:
        """Whether a run holds the user's lock (it ends its own rows). Probed by taking
        the lock and giving it back: a `sync_user` arriving meanwhile waits for it."""
        name, owner = self.lock_name(user_id), new_owner()
        if not await self._locks.acquire(name, owner, self._options.lock_ttl_seconds):
            return True
        await self._locks.release(name, owner)
        return False

    async def _run(self, user_id: int, check_remote: bool) -> UserRunResult:
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            request_ids = await repository.claim_requests(user_id)
            links = [
                link
                for link in await repository.links_of(user_id)
                if link.state == LinkState.ACTIVE
            ]
            contests = await ContestRepository(session).snapshots_not_ended(self._clock())
            desired = _desired_for(contests, await repository.preferences(user_id))
        result = UserRunResult(user_id)
        finished = False
        try:
            for link in links:
                result.links.append(await self._sync_link(link, contests, desired, check_remote))
            finished = True
        finally:
            # Every claimed request ends, even when the run was cancelled or crashed.
            ok = finished and result.ok
            summary = result.describe() if finished else _INTERRUPTED
            async with self._db.session() as session, session.begin():
                await CalendarRepository(session).finish_requests(
                    request_ids,
                    RequestState.SUCCEEDED if ok else RequestState.FAILED,
                    summary,
                    self._clock(),
                )
        return result

    async def _sync_link(
        self,
        link: CalendarLink,
        contests: Sequence[ContestSnapshot],
        desired: Sequence[DesiredEvent],
        check_remote: bool,
    ) -> LinkResult:
        """One run of one link, recorded as one row whatever happens inside it."""
        run_id = await self._open_run(link.id)
        if run_id is None:
            return LinkResult(link.id, RunStatus.SUCCEEDED, RunSummary(), "link removed")
        try:
            return await self._sync_attempts(link, contests, desired, check_remote, run_id)
        except asyncio.CancelledError:
            # The worker is stopping; a redelivered task will run the sync again.
            await self._fail_run(link.id, run_id, _INTERRUPTED)
            raise
        except Exception:
            log.exception("calendars.sync.crashed link=%s run=%s", link.id, run_id)
            await self._fail_run(link.id, run_id, _UNEXPECTED)
            return LinkResult(link.id, RunStatus.FAILED, RunSummary(), _UNEXPECTED)

    async def _sync_attempts(
        self,
        link: CalendarLink,
        contests: Sequence[ContestSnapshot],
        desired: Sequence[DesiredEvent],
        check_remote: bool,
        run_id: int,
    ) -> LinkResult:
        """Retry an unavailable calendar with backoff, counting attempts on the run's row
        (not one row per attempt: the history keeps older runs)."""
        live = {contest.event_key for contest in contests}
        async with self._db.session() as session:
            # Events of contests that ended stay in the calendar: the plan never sees them.
            pushed = [
                r for r in await CalendarRepository(session).pushed(link.id) if r.event_key in live
            ]
        for attempt in itertools.count(1):
            try:
                sink, auth = await self._sink(link)
                run = await sync_calendar(
                    sink, desired, pushed, link.cursor, check_remote=check_remote
                )
            except ReconnectRequiredError as exc:
                await self._needs_reconnect(link.id, run_id, str(exc))
                return LinkResult(link.id, RunStatus.FAILED, RunSummary(), str(exc))
            except RetriableCalendarError as exc:
                if attempt > self._options.sync_retries:
                    await self._fail_run(link.id, run_id, str(exc))
                    return LinkResult(link.id, RunStatus.FAILED, RunSummary(), str(exc))
                await self._note_retry(run_id, attempt + 1, str(exc))
                await self._sleep(self._retry_delay(attempt, exc.retry_after))
                continue
            except CalendarError as exc:
                await self._fail_run(link.id, run_id, str(exc))
                return LinkResult(link.id, RunStatus.FAILED, RunSummary(), str(exc))
            return await self._store_run(link.id, run_id, run, auth)
        raise AssertionError("unreachable: the loop returns")

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """Like the queue's retries: growing with the attempt, jittered, capped; at least
        what the server asked for."""
        options = self._options
        delay = options.retry_delay_seconds * attempt + random.random()  # jitter, not crypto
        return min(max(delay, retry_after or 0.0), options.max_retry_delay_seconds)

    async def _open_run(self, link_id: int) -> int | None:
        """A "running" row, so the history shows a sync in progress (None: the link was
        just disconnected). Rows a killed worker left running are closed first: the
        user's lock says no other run is going."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            if await repository.link(link_id) is None:
                return None
            await repository.close_abandoned_runs(link_id, now, _INTERRUPTED)
            row = _run_row(link_id, now, None, RunStatus.RUNNING, RunSummary(), "")
            repository.add(row)
            await repository.flush()
            return row.id

    async def _note_retry(self, run_id: int, attempts: int, error: str) -> None:
        async with self._db.session() as session, session.begin():
            await CalendarRepository(session).count_attempt(run_id, attempts, error[:4000])

    async def _store_run(
        self, link_id: int, run_id: int, run: SyncRun, auth: GoogleAuth | None
    ) -> LinkResult:
        # A run in which any call failed is a failed run (the original reported success).
        status = RunStatus.FAILED if run.summary.failed else RunStatus.SUCCEEDED
        error = "; ".join(run.summary.errors)[:4000]
        now = self._clock()
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            link = await repository.link(link_id)
            if link is None:
                return LinkResult(link_id, status, run.summary, "link removed during the run")
            await repository.store_records(link_id, run.records, now)
            link.cursor, link.last_run_at, link.last_status = run.cursor, now, status
            if auth is not None:
                self._keep_token(link, auth)
            await repository.finish_run(run_id, now, status, run.summary, error)
        return LinkResult(link_id, status, run.summary, error)

    async def _fail_run(self, link_id: int, run_id: int, error: str) -> None:
        now = self._clock()
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            await repository.finish_run(run_id, now, RunStatus.FAILED, RunSummary(), error)
            link = await repository.link(link_id)
            if link is not None:
                link.last_run_at, link.last_status = now, RunStatus.FAILED

    async def _needs_reconnect(self, link_id: int, run_id: int, reason: str) -> None:
        """Stop syncing the link and tell the user once. Never deletes anything."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            repository = CalendarRepository(session)
            await repository.finish_run(run_id, now, RunStatus.FAILED, RunSummary(), reason)
            link = await repository.link(link_id)
            if link is None:
                return
            link.state, link.state_reason, link.updated_at = LinkState.NEEDS_RECONNECT, reason, now
            link.last_run_at, link.last_status = now, RunStatus.FAILED
            if link.reconnect_notified_at is None:
                link.reconnect_notified_at = now
                await self._notifier.reconnect_needed(repository, link)
        log.warning("calendars.link.needs_reconnect link=%s reason=%s", link_id, reason)

    # -- sinks ---------------------------------------------------------------------

    async def _sink(self, link: CalendarLink) -> tuple[CalendarSink, GoogleAuth | None]:
        if link.kind == LinkKind.GOOGLE:
            return self._google_sink(link)
        return self._caldav_sink(link), None

    def _google_sink(self, link: CalendarLink) -> tuple[GoogleCalendarSink, GoogleAuth]:
        config = self._options.google
        access = ""
        if link.access_token_encrypted:
            access = self._keyring.decrypt(link.access_token_encrypted, _ACCESS_PURPOSE)
        token = GoogleToken(
            access_token=access,
            expires_at=link.access_expires_at or _EPOCH,
            refresh_token=self._keyring.decrypt(link.secret_encrypted, _REFRESH_PURPOSE),
        )
        auth = GoogleAuth(self._http, config, token, self._clock)
        sink = GoogleCalendarSink(
            self._http,
            auth,
            config,
            user_id=link.user_id,
            calendar_id=link.target,
            sleep=self._sleep,
        )
        return sink, auth

    def _caldav_sink(self, link: CalendarLink) -> CalDavSink:
        config = CalDavConfig(
            collection_url=link.target,
            username=link.username,
            password=self._keyring.decrypt(link.secret_encrypted, _REFRESH_PURPOSE),
            backoff_seconds=self._options.caldav_backoff_seconds,
        )
        return CalDavSink(self._http, config, clock=self._clock, sleep=self._sleep)

    def _keep_token(self, link: CalendarLink, auth: GoogleAuth) -> None:
        token = auth.token
        if token.access_token:
            link.access_token_encrypted = self._keyring.encrypt(token.access_token, _ACCESS_PURPOSE)
            link.access_expires_at = token.expires_at
        link.secret_encrypted = self._keyring.encrypt(token.refresh_token, _REFRESH_PURPOSE)

    # -- fan-out -------------------------------------------------------------------

    async def users_to_sync(self, changed: Sequence[EventKey]) -> list[int]:
        """Users whose calendars a change of these contests touches.

        Those whose filters match a changed contest now, and those holding an event for
        one (it moved out of their filters, or was cancelled: it must be deleted).
        """
        if not changed:
            return []
        async with self._db.session() as session:
            repository = CalendarRepository(session)
            contests = await ContestRepository(session).snapshots_by_keys(changed)
            users = await repository.users_with_pushed(changed)
            for preferences in await repository.preferences_of_linked_users():
                if _desired_for(contests, preferences):
                    users.add(preferences.user_id)
            active = set(await repository.users_with_active_links())
        return sorted(users & active)

    async def users_to_reconcile(self) -> list[int]:
        async with self._db.session() as session:
            return await CalendarRepository(session).users_with_active_links()


def _desired_for(
    contests: Sequence[ContestSnapshot], preferences: Preferences | None
) -> list[DesiredEvent]:
    if preferences is None:
        return []  # no preferences saved: nothing chosen, so nothing to show
    style = EventStyle(tuple(preferences.reminder_minutes), preferences.color or None)
    return desired_events(contests, filters_of(preferences), zone_of(preferences.timezone), style)


def _run_row(
    link_id: int,
    started: datetime,
    finished: datetime | None,
    status: RunStatus,
    summary: RunSummary,
    error: str,
) -> SyncRunRow:
    return SyncRunRow(
        link_id=link_id,
        started_at=started,
        finished_at=finished,
        status=status,
        inserted=summary.inserted,
        updated=summary.updated,
        deleted=summary.deleted,
        failed=summary.failed,
        error=error[:4000],
    )


async def _connect_call(call: Awaitable[T]) -> T:
    """Fixed messages only: what the server answered is never shown (it may be internal)."""
    try:
        return await call
    except RefusedAddressError as exc:
        raise CalendarLinkError(exc.message) from exc
    except ReconnectRequiredError as exc:
        raise CalendarLinkError(_CREDENTIALS_REFUSED) from exc
    except CalendarError as exc:
        raise CalendarLinkError(_NOT_CONNECTED) from exc
