"""The Codeforces API as data: wire models, parsers, request URLs and the errors answers stand for.

Pure: nothing here talks to the network, so `stats`, `planner` and the services import it
without the client. Answers are parsed by `parse_user_infos`, `parse_rating_changes`,
`parse_submissions` and `parse_problem_catalogue` into pydantic models that ignore unknown
fields. The client lives in `codeforces_client`.

Errors:

    CodeforcesError (CpsyncError)
    ├── CodeforcesPermanentError        (errors.PermanentError) retrying will not help
    │   ├── HandleNotFoundError         "handle(s): User with handle X not found"; `.handle`
    │   ├── CodeforcesFailedError       any other FAILED answer or 4xx; `.comment` if known
    │   └── UnreadableAnswerError       not JSON, not the envelope, or items of the wrong shape
    └── CodeforcesRetriableError        (errors.RetriableError) try again after `.retry_after` s
        ├── CallLimitError              "Call limit exceeded"
        └── CodeforcesUnavailableError  503 overload, other 5xx, network trouble

Nothing else escapes the parsers or the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from cpsync.errors import CpsyncError, PermanentError, RetriableError

# ---------------------------------------------------------------- errors


class CodeforcesError(CpsyncError):
    """Raised only as one of its two subclasses, which say whether a retry can help."""

    status_code = 502

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class CodeforcesPermanentError(CodeforcesError, PermanentError):
    pass


class CodeforcesRetriableError(CodeforcesError, RetriableError):
    # Always known: without a hint from Codeforces, the pause this module chose.
    retry_after: float

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


def paired(batch: Sequence[str], infos: Sequence[UserInfo]) -> dict[str, UserInfo]:
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


def failed_comment(body: bytes) -> str | None:
    """The `comment` of a FAILED envelope in `body`, or None if `body` is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and document.get("status") == "FAILED":
        return str(document.get("comment", ""))
    return None
