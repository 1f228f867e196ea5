"""Google Calendar API v3 sink, over raw HTTP.

Writes go in multipart batches of up to `batch_size` inner calls. Each inner call is
judged on its own: 409 on insert → fetch and patch (a deleted id cannot be reused, but
its cancelled event can be revived), 404/410 on delete → done, 404 on patch → insert,
403 rate limits / 429 / 5xx → retried with bounded exponential backoff and jitter,
anything else → a FAILED result. Only the calls that need it are retried.

`invalid_grant` from the token endpoint raises `ReconnectRequiredError`: the caller marks
the link "needs reconnect" and stops syncing it; it never deletes anything.

Incremental reads use `syncToken`. Google forbids `privateExtendedProperty` together
with a sync token, so our events are recognised client-side: by the
`extendedProperties.private.app == "cpsync"` tag, or (for deleted events, which come
back bare) by an id we pushed.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cpsync.calendars.batch import (
    BatchFormatError,
    InnerRequest,
    InnerResponse,
    decode_batch,
    encode_batch,
)
from cpsync.calendars.errors import (
    PermanentCalendarError,
    ReconnectRequiredError,
    RetriableCalendarError,
)
from cpsync.calendars.plan import (
    CallResult,
    DesiredEvent,
    Outcome,
    Plan,
    PushedEvent,
    RemoteChanges,
    RemoteEvent,
    event_id,
)
from cpsync.calendars.transport import RawHttp
from cpsync.clock import Clock, utc_now
from cpsync.http import HttpResponse, RetriableUpstreamError, Sleep, parse_retry_after

APP_TAG = "cpsync"
MAX_REMINDERS = 5  # Google accepts at most five overrides
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_MAX_FALLBACKS = 3  # insert → get → patch is the longest honest chain


@dataclass(frozen=True, slots=True)
class GoogleConfig:
    """Where Google lives and how hard to push it. Tests point the URLs at a fake."""

    client_id: str
    client_secret: str
    api_base_url: str = "https://www.googleapis.com"
    token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
    batch_size: int = 50
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 32.0
    page_size: int = 2500  # Google's maximum: fewer reads on a busy primary calendar


@dataclass(frozen=True, slots=True)
class GoogleToken:
    access_token: str
    expires_at: datetime
    refresh_token: str


class GoogleAuth:
    """Access tokens from a refresh token; the caller persists `token` after a run."""

    def __init__(
        self, http: RawHttp, config: GoogleConfig, token: GoogleToken, clock: Clock = utc_now
    ) -> None:
        self._http = http
        self._config = config
        self.token = token
        self._clock = clock
        self._lock = asyncio.Lock()

    async def authorization(self) -> str:
        async with self._lock:
            if self.token.expires_at - timedelta(seconds=60) <= self._clock():
                await self._refresh()
            return f"Bearer {self.token.access_token}"

    async def invalidate(self, rejected: str) -> None:
        """The API refused `rejected` (401): refresh unless another call already did."""
        async with self._lock:
            if rejected == f"Bearer {self.token.access_token}":
                await self._refresh()

    async def _refresh(self) -> None:
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": self.token.refresh_token,
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = await self._http.send(
                "POST", self._config.token_url, headers=headers, content=form
            )
        except RetriableUpstreamError as exc:
            raise RetriableCalendarError(f"token refresh: {exc.message}") from exc
        self.token = self._token_from(response)

    def _token_from(self, response: HttpResponse) -> GoogleToken:
        payload = _json_or_empty(response.body)
        if response.status == 200 and isinstance(payload.get("access_token"), str):
            lifetime = int(payload.get("expires_in", 3600))
            expires_at = self._clock() + timedelta(seconds=lifetime)
            # Google may rotate the refresh token; keep the new one when it does.
            refresh = str(payload.get("refresh_token") or self.token.refresh_token)
            return GoogleToken(payload["access_token"], expires_at, refresh)
        error = str(payload.get("error", ""))
        if error == "invalid_grant":
            raise ReconnectRequiredError("Google access was revoked or expired: reconnect")
        if response.status == 429 or response.status >= 500:
            raise RetriableCalendarError(
                f"token refresh: HTTP {response.status}",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        raise PermanentCalendarError(f"token refresh refused: HTTP {response.status} {error}")


def build_event_body(event: DesiredEvent) -> dict[str, Any]:
    """The Event resource for one contest (without `id`, which only inserts carry)."""
    body: dict[str, Any] = {
        "summary": event.summary,
        "description": _description(event),
        "location": event.url,
        "start": _when(event.start),
        "end": _when(event.end),
        "status": "confirmed",  # also revives an event that was deleted
        "reminders": {
            "useDefault": False,
            "overrides": [
                {"method": "popup", "minutes": minutes}
                for minutes in event.reminders[:MAX_REMINDERS]
            ],
        },
        "extendedProperties": {
            "private": {
                "app": APP_TAG,
                "platform": event.platform,
                "key": event.key,
                "revision": str(event.revision),
            }
        },
    }
    if event.colour is not None:
        body["colorId"] = event.colour
    return body


def _description(event: DesiredEvent) -> str:
    if event.url in event.description:
        return event.description
    return f"{event.description}\n{event.url}".strip()


def _when(moment: datetime) -> dict[str, str]:
    utc = moment.astimezone(UTC)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeZone": "UTC"}


def shown_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """What the user sees of an event, normalised so Google's echo compares equal."""
    reminders = item.get("reminders") or {}
    # Lists, not tuples: the remote side of the comparison has been through JSON.
    overrides = sorted(
        [str(r.get("method")), int(r.get("minutes", 0))] for r in reminders.get("overrides", [])
    )
    return {
        "summary": item.get("summary", ""),
        "description": item.get("description", ""),
        "location": item.get("location", ""),
        "start": _instant(item.get("start")),
        "end": _instant(item.get("end")),
        "status": item.get("status", "confirmed"),
        "reminders": [bool(reminders.get("useDefault", False)), overrides],
        "colorId": item.get("colorId"),
    }


def _instant(when: Mapping[str, Any] | None) -> str:
    """Google echoes times in the calendar's offset; compare the instants."""
    value = (when or {}).get("dateTime")
    if not value:
        return str((when or {}).get("date", ""))
    return datetime.fromisoformat(value).astimezone(UTC).isoformat()


def event_matches(event: DesiredEvent, fingerprint: str) -> bool:
    """Whether the remote event still shows what we pushed.

    Only the fields we set are compared: without a colour preference the user may
    colour our events as they like without cpsync "restoring" them.
    """
    expected = shown_fields(build_event_body(event))
    if event.colour is None:
        expected.pop("colorId")
    remote = json.loads(fingerprint)
    return all(remote.get(name) == value for name, value in expected.items())


class _Op(StrEnum):
    INSERT = "insert"
    PATCH = "patch"
    GET = "get"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class _Call:
    op: _Op
    goal: Outcome  # what success of the whole chain means for this event
    event_id: str
    platform: str
    key: str
    revision: int
    desired: DesiredEvent | None = None
    attempts: int = 0
    fallbacks: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Round:
    """The outcome of sending one round of calls."""

    results: list[CallResult] = field(default_factory=list)
    follow_ups: list[_Call] = field(default_factory=list)
    retries: list[_Call] = field(default_factory=list)
    retry_after: float = 0.0


class GoogleCalendarSink:
    def __init__(
        self,
        http: RawHttp,
        auth: GoogleAuth,
        config: GoogleConfig,
        *,
        user_id: int | str,
        calendar_id: str = "primary",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._auth = auth
        self._config = config
        self._user_id = user_id
        self.calendar_id = calendar_id
        self._sleep = sleep
        self._api = config.api_base_url.rstrip("/")
        self._api_path = urlsplit(self._api).path

    def external_id(self, platform: str, key: str) -> str:
        return event_id(self._user_id, platform, key)

    def still_ours(self, desired: DesiredEvent, record: PushedEvent, fingerprint: str) -> bool:
        return event_matches(desired, fingerprint)

    # -- reads ---------------------------------------------------------------------

    async def changes(self, cursor: str | None) -> RemoteChanges:
        """What changed since `cursor` (all our events when None or expired)."""
        try:
            return await self._list(cursor)
        except _SyncTokenExpiredError:
            full = await self._list(None)
            return replace(full, reads=full.reads + 1)

    async def _list(self, sync_token: str | None) -> RemoteChanges:
        events: list[RemoteEvent] = []
        page_token: str | None = None
        reads = 0
        while True:
            page = await self._list_page(sync_token, page_token)
            reads += 1
            events.extend(_ours(page.get("items", [])))
            page_token = page.get("nextPageToken")
            if not page_token:
                cursor = page.get("nextSyncToken")
                return RemoteChanges(tuple(events), cursor, sync_token is None, reads)

    async def _list_page(self, sync_token: str | None, page_token: str | None) -> dict[str, Any]:
        query: dict[str, str] = {"maxResults": str(self._config.page_size)}
        if sync_token:
            query["syncToken"] = sync_token
        if page_token:
            query["pageToken"] = page_token
        url = f"{self._events_url()}?{urlencode(query)}"
        response = await self._authorized("GET", url)
        if response.status == 410:
            raise _SyncTokenExpiredError
        _raise_for_status(response, "list events")
        return _json_or_empty(response.body)

    async def create_calendar(self, summary: str) -> str:
        """A dedicated calendar (works with the `calendar.app.created` scope); its id."""
        body = json.dumps({"summary": summary, "timeZone": "UTC"}).encode()
        response = await self._authorized(
            "POST", f"{self._api}/calendar/v3/calendars", content=body, json_body=True
        )
        _raise_for_status(response, "create calendar")
        calendar_id = str(_json_or_empty(response.body).get("id", ""))
        if not calendar_id:
            raise PermanentCalendarError("Google created a calendar without an id")
        self.calendar_id = calendar_id
        return calendar_id

    # -- writes --------------------------------------------------------------------

    async def apply(self, plan: Plan) -> list[CallResult]:
        """Run the plan; one result per planned event, failures included."""
        pending = list(self._calls(plan))
        results: list[CallResult] = []
        while pending:
            outcome = await self._send_round(pending)
            results.extend(outcome.results)
            retries, exhausted = self._bounded(outcome.retries)
            results.extend(exhausted)
            if retries:
                await self._sleep(self._backoff(retries, outcome.retry_after))
            pending = outcome.follow_ups + retries
        return results

    def _calls(self, plan: Plan) -> Iterator[_Call]:
        for event in plan.inserts:
            yield self._call(_Op.INSERT, Outcome.INSERTED, event)
        for update in plan.updates:
            yield self._call(_Op.PATCH, Outcome.UPDATED, update.desired, update.pushed)
        for record in plan.deletes:
            yield _Call(
                _Op.DELETE,
                Outcome.DELETED,
                record.external_id,
                record.platform,
                record.key,
                record.revision,
            )

    def _call(
        self, op: _Op, goal: Outcome, event: DesiredEvent, record: PushedEvent | None = None
    ) -> _Call:
        external_id = record.external_id if record else self.external_id(event.platform, event.key)
        return _Call(op, goal, external_id, event.platform, event.key, event.revision, event)

    def _bounded(self, retries: list[_Call]) -> tuple[list[_Call], list[CallResult]]:
        again: list[_Call] = []
        exhausted: list[CallResult] = []
        for call in retries:
            call = replace(call, attempts=call.attempts + 1)
            if call.attempts >= self._config.max_attempts:
                exhausted.append(
                    _failed(call, f"gave up after {call.attempts} attempts: {call.last_error}")
                )
            else:
                again.append(call)
        return again, exhausted

    def _backoff(self, retries: list[_Call], retry_after: float) -> float:
        attempt = max(call.attempts for call in retries)
        base = self._config.backoff_seconds * 2.0 ** (attempt - 1)
        jittered = base + random.uniform(0, base)  # jitter, not crypto
        return min(max(jittered, retry_after), self._config.max_backoff_seconds)

    async def _send_round(self, calls: list[_Call]) -> _Round:
        outcome = _Round()
        size = self._config.batch_size
        for start in range(0, len(calls), size):
            chunk = calls[start : start + size]
            answers = await self._send_batch(chunk)
            for index, call in enumerate(chunk):
                self._judge(call, answers.get(str(index)), outcome)
        return outcome

    async def _send_batch(self, calls: Sequence[_Call]) -> dict[str, InnerResponse]:
        """Inner answers by Content-ID (the call's index in `calls`); none on network trouble."""
        content_type, body = encode_batch(
            [self._inner_request(str(index), call) for index, call in enumerate(calls)]
        )
        try:
            response = await self._authorized(
                "POST", f"{self._api}/batch/calendar/v3", content=body, content_type=content_type
            )
        except RetriableCalendarError:
            return {}  # every call in it is retried
        if response.status != 200:
            return _whole_batch_answer(response, len(calls))
        try:
            return decode_batch(response.headers.get("content-type", ""), response.body)
        except BatchFormatError:
            return {}

    def _inner_request(self, content_id: str, call: _Call) -> InnerRequest:
        events = f"{self._api_path}/calendar/v3/calendars/{quote(self.calendar_id, safe='')}/events"
        if call.op == _Op.INSERT:
            assert call.desired is not None
            body = {"id": call.event_id, **build_event_body(call.desired)}
            return InnerRequest(content_id, "POST", events, body)
        path = f"{events}/{call.event_id}"
        if call.op == _Op.PATCH:
            assert call.desired is not None
            return InnerRequest(content_id, "PATCH", path, build_event_body(call.desired))
        return InnerRequest(content_id, call.op.upper(), path)

    def _judge(self, call: _Call, answer: InnerResponse | None, outcome: _Round) -> None:
        if answer is None or _is_retriable(answer):
            error = _error_text(answer) if answer is not None else "no answer (network)"
            outcome.retries.append(replace(call, last_error=error))
            if answer is not None:
                delay = parse_retry_after(answer.headers.get("retry-after")) or 0.0
                outcome.retry_after = max(outcome.retry_after, delay)
            return
        next_step = _next_step(call, answer)
        if isinstance(next_step, _Call):
            if next_step.fallbacks > _MAX_FALLBACKS:
                outcome.results.append(_failed(call, "kept bouncing between insert and patch"))
            else:
                outcome.follow_ups.append(next_step)
        else:
            outcome.results.append(next_step)

    # -- plumbing ------------------------------------------------------------------

    def _events_url(self) -> str:
        return f"{self._api}/calendar/v3/calendars/{quote(self.calendar_id, safe='')}/events"

    async def _authorized(
        self,
        method: str,
        url: str,
        *,
        content: bytes = b"",
        json_body: bool = False,
        content_type: str | None = None,
    ) -> HttpResponse:
        """One request with a fresh token; a 401 refreshes the token and tries once more."""
        headers = {"Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        for _ in range(2):
            headers["Authorization"] = await self._auth.authorization()
            try:
                response = await self._http.send(method, url, headers=headers, content=content)
            except RetriableUpstreamError as exc:
                raise RetriableCalendarError(exc.message) from exc
            if response.status != 401:
                return response
            await self._auth.invalidate(headers["Authorization"])
        return response


class _SyncTokenExpiredError(Exception):
    """410 on an incremental list: the token expired, start a full listing."""


def _ours(items: list[dict[str, Any]]) -> Iterator[RemoteEvent]:
    for item in items:
        private = (item.get("extendedProperties") or {}).get("private") or {}
        deleted = item.get("status") == "cancelled"
        if deleted:
            yield RemoteEvent(str(item["id"]), True)
        elif private.get("app") == APP_TAG:
            fingerprint = json.dumps(shown_fields(item), sort_keys=True)
            yield RemoteEvent(str(item["id"]), False, fingerprint)


def _next_step(call: _Call, answer: InnerResponse) -> CallResult | _Call:
    """A final result, or the follow-up call Google's answer calls for."""
    status = answer.status
    if call.op == _Op.DELETE and status in (404, 410):
        return _done(call)  # already gone: what we wanted
    if call.op == _Op.INSERT and status == 409:
        return replace(call, op=_Op.GET, attempts=0, fallbacks=call.fallbacks + 1)
    if call.op == _Op.PATCH and status == 404:
        return replace(call, op=_Op.INSERT, attempts=0, fallbacks=call.fallbacks + 1)
    if 200 <= status < 300 and call.op == _Op.GET:
        return _after_fetch(call, answer)
    if 200 <= status < 300:
        return _done(call)
    return _failed(call, _error_text(answer))


def _after_fetch(call: _Call, answer: InnerResponse) -> CallResult | _Call:
    """The id is taken: patch it if it is ours (possibly a cancelled one, revived)."""
    payload = answer.json() or {}
    private = (payload.get("extendedProperties") or {}).get("private") or {}
    if private.get("app") != APP_TAG:
        return _failed(call, "event id is taken by an event cpsync did not create")
    return replace(call, op=_Op.PATCH, attempts=0, fallbacks=call.fallbacks + 1)


def _done(call: _Call) -> CallResult:
    digest = call.desired.digest if call.desired else None
    return CallResult(
        call.platform, call.key, call.goal, call.event_id, call.revision, digest=digest
    )


def _failed(call: _Call, error: str) -> CallResult:
    return CallResult(
        call.platform, call.key, Outcome.FAILED, call.event_id, call.revision, error=error
    )


def _is_retriable(answer: InnerResponse) -> bool:
    if answer.status == 429 or answer.status >= 500:
        return True
    if answer.status == 401:
        return True  # the token expired mid-batch; the next round refreshes it
    return answer.status == 403 and _error_reason(answer.body) in _RATE_LIMIT_REASONS


def _whole_batch_answer(response: HttpResponse, count: int) -> dict[str, InnerResponse]:
    """When Google refuses the whole batch, every call in it shares that answer
    (and its Retry-After): a 429 retries them all, a 400 fails them all."""
    answer = InnerResponse(response.status, response.headers, response.body)
    return {str(index): answer for index in range(count)}


def _error_reason(body: bytes) -> str:
    error = _json_or_empty(body).get("error")
    if not isinstance(error, dict):
        return ""
    errors = error.get("errors") or [{}]
    return str(errors[0].get("reason") or error.get("status") or "")


def _error_text(answer: InnerResponse) -> str:
    error = _json_or_empty(answer.body).get("error")
    message = error.get("message", "") if isinstance(error, dict) else ""
    reason = _error_reason(answer.body)
    return f"HTTP {answer.status} {reason}: {message}".strip(": ")


def _raise_for_status(response: HttpResponse, what: str) -> None:
    if 200 <= response.status < 300:
        return
    answer = InnerResponse(response.status, response.headers, response.body)
    if _is_retriable(answer):
        raise RetriableCalendarError(
            f"{what}: {_error_text(answer)}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    raise PermanentCalendarError(f"{what}: {_error_text(answer)}")


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
