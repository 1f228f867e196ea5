"""The HTTP client for the Codeforces API calls that student tracking needs.

Every attempt is one `send` on the process's `HttpClient`, whose pacer for Codeforces'
host is the shared token bucket (one call per two seconds per client): this client runs
its own retry loop, so that retries are paced too. What the answers mean (models,
parsers, URLs, errors) is the pure `codeforces_api`; only its errors leave this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cpsync.http import (
    HttpClient,
    HttpResponse,
    RetriableUpstreamError,
    UpstreamError,
    parse_retry_after,
)
from cpsync.students.codeforces_api import (
    UNAVAILABLE_PAUSE_SECONDS,
    CodeforcesError,
    CodeforcesFailedError,
    CodeforcesRetriableError,
    CodeforcesUnavailableError,
    HandleNotFoundError,
    LookupProgress,
    ProblemCatalogue,
    RatingChange,
    Submission,
    UserInfo,
    UserLookup,
    catalogue_from,
    envelope_result,
    failed_comment,
    failure_error,
    handle_batches,
    paired,
    problemset_problems_url,
    rating_changes_from,
    submissions_from,
    unique_handles,
    user_info_url,
    user_infos_from,
    user_rating_url,
    user_status_url,
)

DEFAULT_BASE_URL = "https://codeforces.com"
Sleep = Callable[[float], Awaitable[None]]
OUT_OF_TIME = "codeforces: the time for checking handles ran out"


class _Lookup:
    """The running state of one `lookup_users`: what is settled, and why the rest is not."""

    def __init__(
        self, handles: list[str], progress: LookupProgress | None, keep_going: Callable[[], bool]
    ) -> None:
        self.handles = handles
        self._progress = progress
        self._keep_going = keep_going
        self._available = True
        self._found: dict[str, UserInfo] = {}
        self._missing: set[str] = set()
        self._unresolved: set[str] = set()
        self._failures: list[str] = []

    def may_call(self) -> bool:
        if self._available and not self._keep_going():
            self._available = False
            self._failures.append(OUT_OF_TIME)
        return self._available

    async def settle_found(self, found: Mapping[str, UserInfo]) -> None:
        self._found.update(found)
        await self._report()

    async def settle_missing(self, handle: str) -> None:
        self._missing.add(handle.casefold())
        await self._report()

    def give_up(self, batch: Sequence[str]) -> None:
        self._unresolved.update(handle.casefold() for handle in batch)

    def fail(self, batch: Sequence[str], error: CodeforcesError) -> None:
        self.give_up(batch)
        self._failures.append(error.message)
        # Still unavailable after the retries: more calls would only add load.
        if isinstance(error, CodeforcesRetriableError):
            self._available = False

    def result(self) -> UserLookup:
        unresolved = frozenset(self._unresolved - self._missing)
        return UserLookup(self._found, frozenset(self._missing), unresolved, tuple(self._failures))

    async def _report(self) -> None:
        if self._progress is not None:
            await self._progress(len(self._found) + len(self._missing), len(self.handles))


# ---------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class CodeforcesClientConfig:
    base_url: str = DEFAULT_BASE_URL
    # Codeforces serves long GET URLs, but proxies and logs start trimming past ~2,000.
    max_url_length: int = 2000
    # Extra attempts after "Call limit exceeded" (another client on our address), a 503
    # or a network error, each waiting the hinted delay (capped) and the throttle again.
    retries: int = 2
    max_retry_delay_seconds: float = 60.0


class CodeforcesClient:
    def __init__(
        self,
        http: HttpClient,
        config: CodeforcesClientConfig | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._config = config or CodeforcesClientConfig()
        self._base = self._config.base_url.rstrip("/")
        self._sleep = sleep

    async def user_info(self, handles: Sequence[str]) -> list[UserInfo]:
        """One result per requested handle, in order; raises HandleNotFoundError."""
        found: dict[str, UserInfo] = {}
        unique = unique_handles(handles)
        for batch in handle_batches(self._base, unique, self._config.max_url_length):
            infos = user_infos_from(await self._result(user_info_url(self._base, batch)))
            found.update(paired(batch, infos))
        return [found[handle.casefold()] for handle in handles]

    async def lookup_users(
        self,
        handles: Sequence[str],
        *,
        progress: LookupProgress | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> UserLookup:
        """Like `user_info`, but never raises: unknown and unanswered handles are reported.

        Codeforces fails the whole call on the first unknown handle and names it, so it
        is dropped from the batch and the rest asked again: each unknown handle costs one
        extra call. A batch that fails otherwise leaves its handles unresolved; once
        Codeforces is unavailable, the remaining batches are not tried. `progress(done,
        total)` hears after every call how many handles are settled; before each call,
        `keep_going()` may end the lookup (a time budget), leaving the rest unresolved.
        """
        lookup = _Lookup(unique_handles(handles), progress, keep_going or (lambda: True))
        for batch in handle_batches(self._base, lookup.handles, self._config.max_url_length):
            if not lookup.may_call():
                lookup.give_up(batch)
                continue
            try:
                await self._lookup_batch(batch, lookup)
            except CodeforcesError as error:
                lookup.fail(batch, error)
        return lookup.result()

    async def _lookup_batch(self, batch: list[str], lookup: _Lookup) -> None:
        while batch:
            try:
                result = await self._result(user_info_url(self._base, batch))
            except HandleNotFoundError as error:
                batch = _without(batch, error)
                await lookup.settle_missing(error.handle)
                if batch and not lookup.may_call():
                    lookup.give_up(batch)
                    return
                continue
            await lookup.settle_found(paired(batch, user_infos_from(result)))
            return

    def calls_at_least(self, handles: Sequence[str]) -> int:
        """How many `user.info` calls these handles take if every one of them exists."""
        unique = unique_handles(handles)
        return sum(1 for _ in handle_batches(self._base, unique, self._config.max_url_length))

    async def user_rating(self, handle: str) -> list[RatingChange]:
        return rating_changes_from(await self._result(user_rating_url(self._base, handle)))

    async def user_status(self, handle: str, from_: int, count: int) -> list[Submission]:
        if from_ < 1 or count < 1:
            raise ValueError("user.status pages start at 1 and hold at least one submission")
        url = user_status_url(self._base, handle, from_, count)
        return submissions_from(await self._result(url))

    async def problemset_problems(self) -> ProblemCatalogue:
        return catalogue_from(await self._result(problemset_problems_url(self._base)))

    async def _result(self, url: str) -> Any:
        """The `result` of an OK answer; anything else becomes a CodeforcesError."""
        retries_left = self._config.retries
        while True:
            try:
                return await self._attempt(url)
            except CodeforcesRetriableError as error:
                if retries_left <= 0:
                    raise
                retries_left -= 1
                await self._sleep(min(error.retry_after, self._config.max_retry_delay_seconds))

    async def _attempt(self, url: str) -> Any:
        # Paced by the HttpClient: Codeforces' host has the shared token bucket as its pacer.
        try:
            response = await self._http.send("GET", url)
        except UpstreamError as error:  # network trouble, or an oversized answer
            raise upstream_error(error) from error
        return answer_result(response)


def answer_result(response: HttpResponse) -> Any:
    """The `result` of one Codeforces answer of any status, or the error it stands for."""
    status = response.status
    if status < 400:
        return envelope_result(response.body, upstream_status=status)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    comment = failed_comment(response.body)
    if comment is not None:
        raise failure_error(comment, upstream_status=status, retry_after=retry_after)
    if status == 429 or status >= 500:
        raise CodeforcesUnavailableError(
            f"codeforces: unavailable (HTTP {status})",
            retry_after=retry_after if retry_after is not None else UNAVAILABLE_PAUSE_SECONDS,
            upstream_status=status,
        )
    raise CodeforcesFailedError(f"codeforces: HTTP {status}", upstream_status=status)


def _without(batch: list[str], error: HandleNotFoundError) -> list[str]:
    remaining = [handle for handle in batch if handle.casefold() != error.handle.casefold()]
    if len(remaining) == len(batch):
        raise error  # names a handle we did not ask for: nothing safe to drop
    return remaining


def upstream_error(error: UpstreamError) -> CodeforcesError:
    """Translate an HttpClient error, reading the FAILED comment Codeforces puts in the body."""
    status = error.upstream_status
    retry_after = error.retry_after if isinstance(error, RetriableUpstreamError) else None
    comment = failed_comment(error.body) if error.body else None
    if comment is not None:
        return failure_error(comment, upstream_status=status, retry_after=retry_after)
    if isinstance(error, RetriableUpstreamError):
        return CodeforcesUnavailableError(
            f"codeforces: unavailable ({error.message})",
            retry_after=retry_after if retry_after is not None else UNAVAILABLE_PAUSE_SECONDS,
            upstream_status=status,
        )
    return CodeforcesFailedError(f"codeforces: {error.message}", upstream_status=status)
