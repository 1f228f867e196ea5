"""A typed client for the Codeforces API calls that student tracking needs.

Every attempt passes through a `Throttle` (Codeforces allows one call per two seconds
per client) and then through the shared `HttpClient` as one `send`: this client runs its
own retry loop, so that retries are throttled too. Answers are parsed by pure functions
(`parse_user_infos`, `parse_rating_changes`, `parse_submissions`,
`parse_problem_catalogue`) into pydantic models that ignore unknown fields.

Errors:

    CodeforcesError (CpsyncError)
    ├── CodeforcesPermanentError        retrying the same call will not help
    │   ├── HandleNotFoundError         "handle(s): User with handle X not found"; `.handle`
    │   ├── CodeforcesFailedError       any other FAILED answer or 4xx; `.comment` if known
    │   └── UnreadableAnswerError       not JSON, not the envelope, or items of the wrong shape
    └── CodeforcesRetriableError        worth trying again after `.retry_after` seconds
        ├── CallLimitError              "Call limit exceeded"
        └── CodeforcesUnavailableError  503 overload, other 5xx, network trouble

Nothing else escapes the parsers or the client.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from cpsync.errors import CpsyncError
from cpsync.http import (
    HttpClient,
    HttpResponse,
    RetriableUpstreamError,
    UpstreamError,
    parse_retry_after,
)
from cpsync.students.throttle import Throttle

DEFAULT_BASE_URL = "https://codeforces.com"
Sleep = Callable[[float], Awaitable[None]]

# ---------------------------------------------------------------- errors


class CodeforcesError(CpsyncError):
    status_code = 502

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class CodeforcesPermanentError(CodeforcesError):
    pass


class CodeforcesRetriableError(CodeforcesError):
    def __init__(
        self, message: str, *, retry_after: float, upstream_status: int | None = None
    ) -> None:
        super().__init__(message, upstream_status=upstream_status)
        self.retry_after = retry_after


class HandleNotFoundError(CodeforcesPermanentError):
    status_code = 404

    def __init__(self, handle: str, *, upstream_status: int | None = None) -> None:
        super().__init__(
            f"codeforces: no user with handle {handle!r}", upstream_status=upstream_status
        )
        self.handle = handle


class CodeforcesFailedError(CodeforcesPermanentError):
    def __init__(
        self, message: str, *, comment: str | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(message, upstream_status=upstream_status)
        self.comment = comment


class UnreadableAnswerError(CodeforcesPermanentError):
    pass


class CallLimitError(CodeforcesRetriableError):
    pass


class CodeforcesUnavailableError(CodeforcesRetriableError):
    pass


# Codeforces words it "handles: ..." for user.info and "handle: ..." for the others.
_HANDLE_NOT_FOUND = re.compile(r"^handles?: User with handle (?P<handle>\S+) not found", re.I)
_CALL_LIMIT = "call limit exceeded"
# The official limit is one call per two seconds; wait a little longer than that.
CALL_LIMIT_PAUSE_SECONDS = 3.0
# Without a Retry-After hint, an overloaded Codeforces gets this long to recover.
UNAVAILABLE_PAUSE_SECONDS = 10.0


def failure_error(
    comment: str, *, upstream_status: int | None = None, retry_after: float | None = None
) -> CodeforcesError:
    """The error a FAILED envelope stands for, judged by its `comment` (and status)."""
    if _CALL_LIMIT in comment.lower():
        return CallLimitError(
            "codeforces: call limit exceeded",
            retry_after=retry_after or CALL_LIMIT_PAUSE_SECONDS,
            upstream_status=upstream_status,
        )
    match = _HANDLE_NOT_FOUND.match(comment)
    if match:
        return HandleNotFoundError(match["handle"], upstream_status=upstream_status)
    if upstream_status is not None and (upstream_status == 429 or upstream_status >= 500):
        return CodeforcesUnavailableError(
            f"codeforces: unavailable: {comment[:200]}",
            retry_after=retry_after if retry_after is not None else UNAVAILABLE_PAUSE_SECONDS,
            upstream_status=upstream_status,
        )
    return CodeforcesFailedError(
        f"codeforces: FAILED: {comment[:200]}", comment=comment, upstream_status=upstream_status
    )


# ---------------------------------------------------------------- models


def _utc_from_seconds(value: object) -> datetime:
    # Pydantic's own int->datetime guesses milliseconds for large numbers; be explicit.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected unix seconds as an integer")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"unix time out of range: {value}") from exc


UnixTime = Annotated[datetime, BeforeValidator(_utc_from_seconds)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, validate_by_name=True)


class UserInfo(_Model):
    """One `user.info` result. Unrated users have no rating or rank fields."""

    handle: NonEmpty
    rating: int | None = None
    max_rating: int | None = Field(default=None, alias="maxRating")
    rank: str | None = None
    max_rank: str | None = Field(default=None, alias="maxRank")
    last_online: UnixTime = Field(alias="lastOnlineTimeSeconds")
    registered: UnixTime = Field(alias="registrationTimeSeconds")


class RatingChange(_Model):
    contest_id: int = Field(alias="contestId")
    contest_name: str = Field(alias="contestName")
    handle: str
    rank: int
    old_rating: int = Field(alias="oldRating")
    new_rating: int = Field(alias="newRating")
    updated_at: UnixTime = Field(alias="ratingUpdateTimeSeconds")

    @property
    def delta(self) -> int:
        return self.new_rating - self.old_rating


class Problem(_Model):
    """A problem; `contest_id` is absent for a few archive problems, `rating` for new ones."""

    contest_id: int | None = Field(default=None, alias="contestId")
    problemset_name: str | None = Field(default=None, alias="problemsetName")
    index: NonEmpty
    name: str
    rating: int | None = None
    tags: tuple[str, ...] = ()


class Member(_Model):
    handle: str


class Party(_Model):
    """Who submitted: one member, or a team (`team_id` set)."""

    participant_type: str | None = Field(default=None, alias="participantType")
    members: tuple[Member, ...] = ()
    team_id: int | None = Field(default=None, alias="teamId")
    team_name: str | None = Field(default=None, alias="teamName")

    @property
    def is_team(self) -> bool:
        return self.team_id is not None


class Submission(_Model):
    id: int
    contest_id: int | None = Field(default=None, alias="contestId")
    created_at: UnixTime = Field(alias="creationTimeSeconds")
    problem: Problem
    author: Party
    # Absent while queued; "TESTING" while judged. Neither is a final verdict.
    verdict: str | None = None
    programming_language: str | None = Field(default=None, alias="programmingLanguage")

    @property
    def is_final(self) -> bool:
        return self.verdict is not None and self.verdict != "TESTING"

    @property
    def accepted(self) -> bool:
        return self.verdict == "OK"


@dataclass(frozen=True, slots=True)
class ProblemCatalogue:
    """Every problem of `problemset.problems`; `skipped` counts items we could not read."""

    problems: tuple[Problem, ...]
    skipped: int = 0

    def by_contest(self) -> dict[int, tuple[Problem, ...]]:
        grouped: dict[int, list[Problem]] = {}
        for problem in self.problems:
            if problem.contest_id is not None:
                grouped.setdefault(problem.contest_id, []).append(problem)
        return {contest: tuple(problems) for contest, problems in grouped.items()}


# ---------------------------------------------------------------- parsers

_M = TypeVar("_M", bound=BaseModel)


def envelope_result(payload: bytes, *, upstream_status: int | None = None) -> Any:
    """The `result` of an OK envelope, or the error a FAILED one stands for.

    Some recorders kept only the `result` array; a bare list is accepted as that.
    """
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UnreadableAnswerError(
            f"codeforces: answer is not JSON ({type(exc).__name__})",
            upstream_status=upstream_status,
        ) from exc
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise UnreadableAnswerError("codeforces: answer is not an envelope")
    status = document.get("status")
    if status == "FAILED":
        raise failure_error(str(document.get("comment", "")), upstream_status=upstream_status)
    if status != "OK" or "result" not in document:
        raise UnreadableAnswerError("codeforces: answer is neither OK nor FAILED")
    return document["result"]


def _validated_list(model: type[_M], result: Any, what: str) -> list[_M]:
    # All or nothing: a submission skipped here would never be fetched again by the
    # incremental sync, so an unreadable item fails the call loudly instead.
    if not isinstance(result, list):
        raise UnreadableAnswerError(f"codeforces: {what} result is not a list")
    try:
        return TypeAdapter(list[model]).validate_python(result)  # type: ignore[valid-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise UnreadableAnswerError(
            f"codeforces: unreadable {what} at {location}: {first['msg']}"
        ) from exc
    except RecursionError as exc:
        raise UnreadableAnswerError(f"codeforces: {what} nested too deeply") from exc


def parse_user_infos(payload: bytes) -> list[UserInfo]:
    return user_infos_from(envelope_result(payload))


def parse_rating_changes(payload: bytes) -> list[RatingChange]:
    return rating_changes_from(envelope_result(payload))


def parse_submissions(payload: bytes) -> list[Submission]:
    return submissions_from(envelope_result(payload))


def parse_problem_catalogue(payload: bytes) -> ProblemCatalogue:
    return catalogue_from(envelope_result(payload))


# The `*_from` functions take an already unwrapped `result`, so the client decodes each
# (up to megabytes long) answer once.


def user_infos_from(result: Any) -> list[UserInfo]:
    return _validated_list(UserInfo, result, "user.info")


def rating_changes_from(result: Any) -> list[RatingChange]:
    return _validated_list(RatingChange, result, "user.rating")


def submissions_from(result: Any) -> list[Submission]:
    return _validated_list(Submission, result, "user.status")


def catalogue_from(result: Any) -> ProblemCatalogue:
    """Lenient per problem: one odd problem must not hide the other ten thousand."""
    items = result.get("problems") if isinstance(result, dict) else None
    if not isinstance(items, list):
        raise UnreadableAnswerError("codeforces: problemset.problems has no problem list")
    problems: list[Problem] = []
    skipped = 0
    for item in items:
        try:
            problems.append(Problem.model_validate(item))
        except (ValidationError, RecursionError):
            skipped += 1
    return ProblemCatalogue(tuple(problems), skipped)


# ---------------------------------------------------------------- requests


def _quoted(value: str) -> str:
    return quote(value, safe="")


def user_info_url(base_url: str, handles: Sequence[str]) -> str:
    # Parameters in alphabetical order, as Codeforces' own signed-request scheme sorts them.
    joined = ";".join(_quoted(handle) for handle in handles)
    return f"{base_url}/api/user.info?checkHistoricHandles=true&handles={joined}"


def user_rating_url(base_url: str, handle: str) -> str:
    return f"{base_url}/api/user.rating?handle={_quoted(handle)}"


def user_status_url(base_url: str, handle: str, from_: int, count: int) -> str:
    return f"{base_url}/api/user.status?count={count}&from={from_}&handle={_quoted(handle)}"


def problemset_problems_url(base_url: str) -> str:
    return f"{base_url}/api/problemset.problems"


def handle_batches(
    base_url: str, handles: Sequence[str], max_url_length: int
) -> Iterator[list[str]]:
    """Split handles so that each `user.info` URL stays within `max_url_length`.

    A single handle longer than the limit still gets a batch of its own.
    """
    batch: list[str] = []
    for handle in handles:
        if batch and len(user_info_url(base_url, [*batch, handle])) > max_url_length:
            yield batch
            batch = []
        batch.append(handle)
    if batch:
        yield batch


def unique_handles(handles: Sequence[str]) -> list[str]:
    """First spelling of each handle, compared case-insensitively, in order."""
    seen: dict[str, str] = {}
    for handle in handles:
        seen.setdefault(handle.casefold(), handle)
    return list(seen.values())


def _paired(batch: Sequence[str], infos: Sequence[UserInfo]) -> dict[str, UserInfo]:
    """Requested handle (casefolded) -> result, by position.

    Renamed handles come back under their new name, so only the position ties a result
    to its request; a known handle found at another position means the order broke.
    """
    if len(infos) != len(batch):
        raise UnreadableAnswerError(
            f"codeforces: user.info answered {len(infos)} users for {len(batch)} handles"
        )
    requested = [handle.casefold() for handle in batch]
    for position, info in enumerate(infos):
        name = info.handle.casefold()
        if name in requested and requested[position] != name:
            raise UnreadableAnswerError("codeforces: user.info answered out of order")
    return dict(zip(requested, infos, strict=True))


@dataclass(frozen=True, slots=True)
class UserLookup:
    """`user.info` results by requested handle (casefolded), and what could not be found.

    `not_found`: Codeforces says no such user. `unresolved`: no answer for these (their
    batch failed; `failures` says why), so nothing may be concluded about them.
    """

    found: Mapping[str, UserInfo]
    not_found: frozenset[str]
    unresolved: frozenset[str] = frozenset()
    failures: tuple[str, ...] = ()

    def get(self, handle: str) -> UserInfo | None:
        return self.found.get(handle.casefold())

    def is_not_found(self, handle: str) -> bool:
        return handle.casefold() in self.not_found


LookupProgress = Callable[[int, int], Awaitable[None]]
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
        throttle: Throttle,
        config: CodeforcesClientConfig | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._throttle = throttle
        self._config = config or CodeforcesClientConfig()
        self._base = self._config.base_url.rstrip("/")
        self._sleep = sleep

    async def user_info(self, handles: Sequence[str]) -> list[UserInfo]:
        """One result per requested handle, in order; raises HandleNotFoundError."""
        found: dict[str, UserInfo] = {}
        unique = unique_handles(handles)
        for batch in handle_batches(self._base, unique, self._config.max_url_length):
            infos = user_infos_from(await self._result(user_info_url(self._base, batch)))
            found.update(_paired(batch, infos))
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
            await lookup.settle_found(_paired(batch, user_infos_from(result)))
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
        await self._throttle.acquire()
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
    comment = _failed_comment(response.body)
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
    comment = _failed_comment(error.body) if error.body else None
    if comment is not None:
        return failure_error(comment, upstream_status=status, retry_after=retry_after)
    if isinstance(error, RetriableUpstreamError):
        return CodeforcesUnavailableError(
            f"codeforces: unavailable ({error.message})",
            retry_after=retry_after if retry_after is not None else UNAVAILABLE_PAUSE_SECONDS,
            upstream_status=status,
        )
    return CodeforcesFailedError(f"codeforces: {error.message}", upstream_status=status)


def _failed_comment(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and document.get("status") == "FAILED":
        return str(document.get("comment", ""))
    return None
