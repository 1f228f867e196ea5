"""LeetCode: the GraphQL endpoint, `allContests` (the whole contest history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from cpsync.platforms.base import (
    BROWSER_HEADERS,
    ParsedContest,
    ParseError,
    ParseResult,
    PlatformRequest,
    collect,
    load_envelope,
    make_contest,
)

NAME = "leetcode"
QUERY = "{ allContests { title titleSlug startTime duration } }"


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel)

    all_contests: list[Any] | None = None
    upcoming_contests: list[Any] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: _Data | None = None
    errors: list[Any] | None = None


class _Contest(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel)

    title: str
    title_slug: str
    start_time: int
    duration: int


class LeetcodePlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        # Without a browser-like client and a contest-page referer, LeetCode's
        # front door answers GraphQL with a challenge page instead of JSON.
        headers = {
            **BROWSER_HEADERS,
            "Content-Type": "application/json",
            "Referer": "https://leetcode.com/contest/",
        }
        return PlatformRequest("POST", f"{base_url}/graphql", headers, {"query": QUERY})

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        items = _contest_items(payload)
        return collect(ParseResult(), items, _build, fetched_at)


def _contest_items(payload: bytes) -> list[Any]:
    envelope = _envelope(payload)
    if envelope.data is None and envelope.errors:
        raise ParseError(f"GraphQL errors: {_error_text(envelope.errors)}", platform=NAME)
    if envelope.data is None:
        raise ParseError("no `data` in the response (not a GraphQL answer)", platform=NAME)
    # `allContests` is what we ask for; `upcomingContests` is the older, smaller field.
    for items in (envelope.data.all_contests, envelope.data.upcoming_contests):
        if items is not None:
            return items
    raise ParseError("neither `allContests` nor `upcomingContests` in data", platform=NAME)


def _envelope(payload: bytes) -> _Envelope:
    return load_envelope(payload, _Envelope, NAME)


def _error_text(errors: list[Any]) -> str:
    message = errors[0].get("message") if isinstance(errors[0], dict) else None
    return message[:200] if isinstance(message, str) else "no error message"


def _build(item: Any) -> ParsedContest:
    contest = _Contest.model_validate(item)
    start = datetime.fromtimestamp(contest.start_time, UTC)
    return make_contest(
        NAME,
        key=contest.title_slug,
        name=contest.title,
        url=f"https://leetcode.com/contest/{contest.title_slug.strip()}",
        start=start,
        end=start + timedelta(seconds=contest.duration),
        duration_seconds=contest.duration,
    )


PLATFORM = LeetcodePlatform()
