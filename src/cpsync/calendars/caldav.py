"""CalDAV sink for any server (Nextcloud, Fastmail, iCloud, Radicale), over raw WebDAV.

One resource per event at `<collection>/<uid>.ics`, its UID stable for the contest's
life. Create with `PUT` + `If-None-Match: *`, update with `PUT` + `If-Match: <etag>`,
remove with `DELETE`. SEQUENCE comes from the contest revision.

Changes made in the calendar are noticed with one `REPORT sync-collection` (RFC 6578):
an unchanged collection costs that one read. An event whose ETag differs from the one
our last PUT returned was edited by someone else; a removed member was deleted.

Per-event trouble comes back as FAILED results. Refused credentials (401/403 on the
collection) raise `ReconnectRequiredError`: the app password must be entered again. An
address the outbound rule refuses raises `RefusedAddressError` and ends the run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from cpsync.calendars.errors import (
    PermanentCalendarError,
    ReconnectRequiredError,
    RefusedAddressError,
    RetriableCalendarError,
)
from cpsync.calendars.ical import build_event_calendar
from cpsync.calendars.plan import (
    CallResult,
    DesiredEvent,
    Outcome,
    Plan,
    PushedEvent,
    RemoteChanges,
    RemoteEvent,
)
from cpsync.calendars.transport import RawHttp
from cpsync.clock import Clock, utc_now
from cpsync.contests.ics import event_uid
from cpsync.http import HttpResponse, RetriableUpstreamError, Sleep, parse_retry_after
from cpsync.outbound import DestinationRefusedError

# Errors that concern the whole link, not one event: they end the run.
_LINK_ERRORS = (ReconnectRequiredError, RefusedAddressError)
_DAV = "{DAV:}"
_SAFE_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,200}")
_XML = "application/xml; charset=utf-8"
_SYNC_COLLECTION = """<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:">
  <d:sync-token>{token}</d:sync-token>
  <d:sync-level>1</d:sync-level>
  <d:prop><d:getetag/></d:prop>
</d:sync-collection>"""
_PROPFIND_ETAG = """<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"""
_MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:set><d:prop>
    <d:displayname>{name}</d:displayname>
    <c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>
  </d:prop></d:set>
</c:mkcalendar>"""


@dataclass(frozen=True, slots=True)
class CalDavConfig:
    collection_url: str  # the calendar collection, e.g. https://dav.example/alice/contests/
    username: str
    password: str  # an app password, decrypted by the caller
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0


class _ConflictError(PermanentCalendarError):
    """412: the resource is not in the state our precondition assumed. Handled where a
    write can recover; anywhere else it fails that one event."""


class _GoneError(PermanentCalendarError):
    """404: the resource we meant to update is not there."""


class CalDavSink:
    def __init__(
        self,
        http: RawHttp,
        config: CalDavConfig,
        *,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._collection = config.collection_url.rstrip("/") + "/"
        self._collection_path = unquote(urlsplit(self._collection).path)
        token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
        self._auth = f"Basic {token}"

    def external_id(self, platform: str, key: str) -> str:
        """The resource path (unquoted); stable because the UID is."""
        uid = event_uid(platform, key)
        name = uid if _SAFE_NAME.fullmatch(uid) else hashlib.sha256(uid.encode()).hexdigest()
        return f"{self._collection_path}{name}.ics"

    def still_ours(self, desired: DesiredEvent, record: PushedEvent, fingerprint: str) -> bool:
        return record.etag is not None and fingerprint == record.etag

    # -- reads ---------------------------------------------------------------------

    async def create_calendar(self, display_name: str) -> bool:
        """MKCALENDAR the collection; False when it already existed."""
        body = _MKCALENDAR.format(name=_xml_text(display_name)).encode()
        response = await self._send("MKCALENDAR", self._collection, body, {"Content-Type": _XML})
        if response.status in (405, 409):
            return False
        self._check_collection_status(response, "create calendar")
        return True

    async def changes(self, cursor: str | None) -> RemoteChanges:
        """Members changed since `cursor`; all members when None or no longer valid."""
        response = await self._sync_collection(cursor or "")
        if cursor and response.status in (403, 409) and b"valid-sync-token" in response.body:
            full = await self._sync_collection("")
            return _changes_from(full, self._collection_path, complete=True, reads=2)
        if response.status != 207:
            return await self._listing_fallback(response)
        return _changes_from(response, self._collection_path, complete=not cursor)

    async def _sync_collection(self, token: str) -> HttpResponse:
        body = _SYNC_COLLECTION.format(token=_xml_text(token)).encode()
        headers = {"Content-Type": _XML, "Depth": "0"}
        return await self._send("REPORT", self._collection, body, headers)

    async def _listing_fallback(self, refused: HttpResponse) -> RemoteChanges:
        """Servers without sync-collection: list every member's ETag (still one read)."""
        self._check_collection_status(refused, "sync-collection", allow=(400, 403, 405, 501))
        headers = {"Content-Type": _XML, "Depth": "1"}
        response = await self._send("PROPFIND", self._collection, _PROPFIND_ETAG.encode(), headers)
        self._check_collection_status(response, "list calendar")
        listing = _changes_from(response, self._collection_path, complete=True, reads=2)
        return RemoteChanges(listing.events, None, True, reads=2)

    # -- writes --------------------------------------------------------------------

    async def apply(self, plan: Plan) -> list[CallResult]:
        results: list[CallResult] = []
        for event in plan.inserts:
            write = partial(self._insert, event)
            results.append(await self._attempt(event, Outcome.INSERTED, write))
        for update in plan.updates:
            write = partial(self._update, update.desired, update.pushed)
            results.append(await self._attempt(update.desired, Outcome.UPDATED, write))
        for record in plan.deletes:
            results.append(await self._attempt_delete(record))
        return results

    async def _attempt(
        self, event: DesiredEvent, outcome: Outcome, write: Callable[[], Awaitable[str | None]]
    ) -> CallResult:
        path = self.external_id(event.platform, event.key)
        error = ""
        for attempt in range(1, self._config.max_attempts + 1):
            try:
                etag = await write()
            except RetriableCalendarError as exc:
                error = exc.message
                await self._sleep(self._backoff(attempt, exc.retry_after))
                continue
            except _LINK_ERRORS:
                raise
            except PermanentCalendarError as exc:
                error = exc.message
                break
            return CallResult(
                event.platform, event.key, outcome, path, event.revision, etag, digest=event.digest
            )
        return CallResult(
            event.platform, event.key, Outcome.FAILED, path, event.revision, error=error
        )

    async def _attempt_delete(self, record: PushedEvent) -> CallResult:
        error = ""
        for attempt in range(1, self._config.max_attempts + 1):
            try:
                await self._delete(record)
            except RetriableCalendarError as exc:
                error = exc.message
                await self._sleep(self._backoff(attempt, exc.retry_after))
                continue
            except _LINK_ERRORS:
                raise
            except PermanentCalendarError as exc:
                error = exc.message
                break
            return CallResult(
                record.platform, record.key, Outcome.DELETED, record.external_id, record.revision
            )
        return CallResult(
            record.platform,
            record.key,
            Outcome.FAILED,
            record.external_id,
            record.revision,
            error=error,
        )

    async def _insert(self, event: DesiredEvent) -> str | None:
        """Create; if it exists already (a lost record, a retried task), take it over."""
        try:
            return await self._put(event, {"If-None-Match": "*"})
        except _ConflictError:
            return await self._overwrite(event)

    async def _update(self, event: DesiredEvent, record: PushedEvent) -> str | None:
        if record.etag is None:
            return await self._insert(event)
        try:
            return await self._put(event, {"If-Match": record.etag})
        except _ConflictError:
            # Edited in the calendar since our last write: cpsync's events are ours
            # to keep right, so the contest's truth wins.
            return await self._overwrite(event)
        except _GoneError:
            return await self._insert(event)

    async def _overwrite(self, event: DesiredEvent) -> str | None:
        """Write over what the resource holds now: read its current ETag and PUT on it.

        Someone editing (or deleting) the event between that read and our PUT makes the
        server answer 412 (or 404): read it again and retry, a few times, rather than
        abort the run.
        """
        path = self.external_id(event.platform, event.key)
        for _ in range(self._config.max_attempts):
            current = await self._current_etag(path)
            condition = {"If-Match": current} if current else {"If-None-Match": "*"}
            try:
                return await self._put(event, condition)
            except (_ConflictError, _GoneError):
                continue
        raise RetriableCalendarError(f"PUT {path}: the event kept changing while we wrote it")

    async def _put(self, event: DesiredEvent, condition: dict[str, str]) -> str | None:
        path = self.external_id(event.platform, event.key)
        body = build_event_calendar(event, stamp=self._clock())
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        response = await self._send("PUT", self._url(path), body, headers)
        self._check_item_status(response, f"PUT {path}")
        etag = response.headers.get("etag")
        # Some servers rewrite the body and withhold the ETag; ask for it then.
        return etag or await self._current_etag(path)

    async def _delete(self, record: PushedEvent) -> None:
        response = await self._send("DELETE", self._url(record.external_id), b"", {})
        if response.status in (404, 410):
            return  # already gone: what we wanted
        self._check_item_status(response, f"DELETE {record.external_id}")

    async def _current_etag(self, path: str) -> str | None:
        headers = {"Content-Type": _XML, "Depth": "0"}
        response = await self._send("PROPFIND", self._url(path), _PROPFIND_ETAG.encode(), headers)
        if response.status == 404:
            return None
        self._check_item_status(response, f"PROPFIND {path}")
        for _, etag in _members(response.body):
            return etag
        return None

    # -- plumbing ------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self._collection, quote(path))

    async def _send(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> HttpResponse:
        headers = {"Authorization": self._auth, **headers}
        try:
            response: HttpResponse = await self._http.send(
                method, url, headers=headers, content=body
            )
        except RetriableUpstreamError as exc:
            raise RetriableCalendarError(exc.message) from exc
        except DestinationRefusedError as exc:
            raise RefusedAddressError(exc.message) from exc
        if response.status == 401:
            raise ReconnectRequiredError("the CalDAV server refused the username or app password")
        return response

    def _check_item_status(self, response: HttpResponse, what: str) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        if status == 412:
            raise _ConflictError(f"{what}: HTTP 412")
        if status == 404:
            raise _GoneError(f"{what}: HTTP 404")
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RetriableCalendarError(f"{what}: HTTP {status}", retry_after=retry_after)
        raise PermanentCalendarError(f"{what}: HTTP {status}")

    def _check_collection_status(
        self, response: HttpResponse, what: str, *, allow: tuple[int, ...] = ()
    ) -> None:
        status = response.status
        if 200 <= status < 300 or status in allow:
            return
        if status == 403:
            raise ReconnectRequiredError(f"{what}: the CalDAV server refused access (403)")
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise RetriableCalendarError(f"{what}: HTTP {status}", retry_after=retry_after)
        raise PermanentCalendarError(f"{what}: HTTP {status}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = self._config.backoff_seconds * 2.0 ** (attempt - 1)
        jittered = base + random.uniform(0, base)  # jitter, not crypto
        return min(max(jittered, retry_after or 0.0), self._config.max_backoff_seconds)


def _changes_from(
    response: HttpResponse, collection_path: str, *, complete: bool, reads: int = 1
) -> RemoteChanges:
    if response.status != 207:
        raise RetriableCalendarError(f"sync-collection: HTTP {response.status}")
    root = _parse(response.body)
    events = [
        RemoteEvent(path, deleted=etag is None, fingerprint=etag or "")
        for path, etag in _members(response.body, root)
        if path.startswith(collection_path) and path.endswith(".ics")
    ]
    token = root.findtext(f"{_DAV}sync-token")
    return RemoteChanges(tuple(events), token.strip() if token else None, complete, reads)


def _members(body: bytes, root: Element | None = None) -> Iterator[tuple[str, str | None]]:
    """(unquoted path, ETag or None when the member is gone) per multistatus response."""
    root = root if root is not None else _parse(body)
    for response in root.iter(f"{_DAV}response"):
        href = response.findtext(f"{_DAV}href") or ""
        path = unquote(urlsplit(href.strip()).path)
        status = response.findtext(f"{_DAV}status") or ""
        if " 404 " in f"{status} ":
            yield path, None
            continue
        etag = response.findtext(f"{_DAV}propstat/{_DAV}prop/{_DAV}getetag")
        if etag:
            yield path, etag.strip()


def _parse(body: bytes) -> Element:
    try:
        root: Element = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise PermanentCalendarError(f"unreadable WebDAV answer: {exc}") from exc
    return root


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
