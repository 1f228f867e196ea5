"""The one outbound HTTP client.

Every call to a remote site goes through `HttpClient`: timeouts, a response size cap,
pacing per host, and retries with exponential backoff and jitter on network errors,
429 and 5xx (honouring `Retry-After`). Other 4xx answers are not retried.

Deadline: the per-read timeout alone lets a site that trickles a byte now and then hold
a call forever, so each call also has an overall deadline (`http_deadline_seconds`):
for `request`, connecting, every read, every retry and the waits between them; for
`send`, its one attempt. A retry that could not finish before the deadline is not tried.

Closing: `aclose` (or `cancel_in_flight`, which shutdown calls first) makes every call in
flight, and every later one, fail at once with RetriableUpstreamError, so work that is
waiting on a slow site ends promptly and can record why.

Pacing: every attempt (retries too) first waits on its host's `Pacer`. By default that
keeps calls to one host `http_min_interval_seconds` apart in this process; a host with
a stricter or shared budget gets its own pacer through `pacers=` (Codeforces: a token
bucket that may live in Redis, shared by every process).

A client that calls URLs users typed (a CalDAV collection) is built with
`transport=cpsync.outbound.GuardedTransport(...)`: every request and redirect hop then
passes the outbound rule, and a refusal (`DestinationRefusedError`) comes out unretried.

Errors (their place in the whole tree is drawn in `cpsync.errors`):

    UpstreamError (CpsyncError)    the site's `upstream_status` and `body`, when it answered
    ├── RetriableUpstreamError     also a RetriableError: network error, timeout, deadline,
    │                              429, 5xx, the client closing; `retry_after` if the site said
    └── PermanentUpstreamError     also a PermanentError: any other 4xx
        └── ResponseTooLargeError  the body passed the size cap
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from cpsync.errors import CpsyncError, PermanentError, RetriableError
from cpsync.pacing import MinIntervalPacer, Pacer
from cpsync.settings import Settings

Sleep = Callable[[float], Awaitable[None]]


class UpstreamError(CpsyncError):
    """`upstream_status` and `body` hold the site's answer, when there was one: APIs such
    as Codeforces explain a 400 or 503 in the body. Raised only as one of its two
    subclasses, which say whether a retry can help."""

    status_code = 502
    upstream_status: int | None
    body: bytes


class RetriableUpstreamError(UpstreamError, RetriableError):
    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.upstream_status = upstream_status
        self.body = body


class PermanentUpstreamError(UpstreamError, PermanentError):
    def __init__(
        self, message: str, *, upstream_status: int | None = None, body: bytes = b""
    ) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.body = body


class ResponseTooLargeError(PermanentUpstreamError):
    pass


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpClient:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        pacers: Mapping[str, Pacer] | None = None,
    ) -> None:
        """`pacers` maps a host (`codeforces.com`, `127.0.0.1:8080`) to the pacer its
        calls wait on instead of the default minimum interval."""
        self._settings = settings
        self._sleep = sleep
        self._pacers: dict[str, Pacer] = dict(pacers or {})
        self._in_flight: set[asyncio.Task[HttpResponse]] = set()
        self._closing = False
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.http_timeout_seconds),
            follow_redirects=True,
            transport=transport,
        )

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.cancel_in_flight()
        # Their connections unwind before the pool that holds them closes.
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._client.aclose()

    def cancel_in_flight(self) -> None:
        """Fail every call in flight now, and every later call, with RetriableUpstreamError."""
        self._closing = True
        for exchange in self._in_flight:
            exchange.cancel()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """Send one request, retrying what is worth retrying, all within the deadline;
        raise UpstreamError otherwise. `max_bytes`: this call's size cap, when not the
        client's."""
        deadline = self._settings.http_deadline_seconds
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._worth_retrying),
            # A wait that would end past the deadline is not begun: the last error stands.
            stop=stop_after_attempt(self._settings.http_max_retries + 1)
            | stop_before_delay(deadline),
            wait=self._retry_delay,
            sleep=self._sleep,
            reraise=True,
        )
        overall = asyncio.timeout(deadline)
        try:
            async with overall:
                async for attempt in retrying:
                    with attempt:
                        return await self._send_once(method, url, headers, json_body, max_bytes)
        except TimeoutError as exc:
            if not overall.expired():
                raise
            raise _past_deadline(url, deadline) from exc
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _worth_retrying(self, error: BaseException) -> bool:
        return isinstance(error, RetriableUpstreamError) and not self._closing

    def _retry_delay(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        cap = self._settings.http_max_retry_after_seconds
        if isinstance(error, RetriableUpstreamError) and error.retry_after is not None:
            return min(error.retry_after, cap)
        base = self._settings.http_backoff_seconds * float(2 ** (state.attempt_number - 1))
        return min(base + random.uniform(0, base), cap)

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json_body: Any = None,
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """One paced, size-capped attempt, within the deadline once paced, that hands back
        any status as a value.

        For callers to whom a 409 or 412 is an answer, not a failure, and which run their
        own retry loop (the calendar sinks). Network trouble raises RetriableUpstreamError.
        """
        await self._pacer(url).acquire()
        host = urlsplit(url).netloc
        if self._closing:
            raise _closing_error(host)
        # Its own task, so that closing the client can cancel it without cancelling
        # the caller, who then gets an error it can record.
        limit = self._settings.http_max_response_bytes if max_bytes is None else max_bytes
        exchange = asyncio.ensure_future(
            self._exchange(method, url, headers, content, json_body, limit)
        )
        self._in_flight.add(exchange)
        exchange.add_done_callback(self._in_flight.discard)
        deadline = self._settings.http_deadline_seconds
        attempt = asyncio.timeout(deadline)
        try:
            async with attempt:
                return await exchange
        except TimeoutError as exc:
            if not attempt.expired():
                raise
            raise _past_deadline(url, deadline) from exc
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closing and current is not None and not current.cancelling():
                raise _closing_error(host) from None
            raise

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        json_body: Any,
        limit: int,
    ) -> HttpResponse:
        host = urlsplit(url).netloc
        try:
            async with self._client.stream(
                method, url, headers=headers, content=content, json=json_body
            ) as response:
                body = await _read_capped(response, url, limit)
        except httpx.TimeoutException as exc:
            raise RetriableUpstreamError(f"timed out: {host}") from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise RetriableUpstreamError(f"cannot reach {host}: {reason}") from exc
        return HttpResponse(response.status_code, response.headers, body)

    async def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        json_body: Any,
        max_bytes: int | None,
    ) -> HttpResponse:
        response = await self.send(
            method, url, headers=headers, json_body=json_body, max_bytes=max_bytes
        )
        return _checked(response, url)

    def _pacer(self, url: str) -> Pacer:
        host = urlsplit(url).netloc
        if host not in self._pacers:
            interval = self._settings.http_min_interval_seconds
            self._pacers[host] = MinIntervalPacer(interval, self._sleep)
        return self._pacers[host]


async def _read_capped(response: httpx.Response, url: str, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLargeError(f"response over {limit} bytes: {url}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLargeError(f"response over {limit} bytes: {url}")
        chunks.append(chunk)
    return b"".join(chunks)


def _past_deadline(url: str, deadline: float) -> RetriableUpstreamError:
    host = urlsplit(url).netloc
    return RetriableUpstreamError(f"no complete answer from {host} within {deadline:g} s")


def _closing_error(host: str) -> RetriableUpstreamError:
    return RetriableUpstreamError(f"call to {host} cancelled: cpsync is shutting down")


def _checked(response: HttpResponse, url: str) -> HttpResponse:
    status = response.status
    if status == 429 or status >= 500:
        raise RetriableUpstreamError(
            f"HTTP {status} from {url}",
            upstream_status=status,
            body=response.body,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if status >= 400:
        raise PermanentUpstreamError(
            f"HTTP {status} from {url}", upstream_status=status, body=response.body
        )
    return response


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
