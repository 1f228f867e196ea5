"""HackerRank: the REST list of upcoming contests, `/rest/contests/upcoming`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cpsync.platforms.base import (
    BROWSER_HEADERS,
    ParsedContest,
    ParseResult,
    PlatformRequest,
    collect,
    load_envelope,
    make_contest,
)

NAME = "hackerrank"


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    models: list[Any]


class _Contest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slug: str
    name: str
    epoch_starttime: int
    epoch_endtime: int


class HackerrankPlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        url = f"{base_url}/rest/contests/upcoming?limit=50&offset=0"
        return PlatformRequest("GET", url, dict(BROWSER_HEADERS))

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        # "Upcoming" here includes contests already running; collect() keeps every
        # contest that has not ended, so those stay listed until they finish.
        items = _envelope(payload).models
        return collect(ParseResult(), items, _build, fetched_at)


def _envelope(payload: bytes) -> _Envelope:
    return load_envelope(payload, _Envelope, NAME)


def _build(item: Any) -> ParsedContest:
    contest = _Contest.model_validate(item)
    return make_contest(
        NAME,
        key=contest.slug,
        name=contest.name,
        url=f"https://www.hackerrank.com/contests/{contest.slug.strip()}",
        start=datetime.fromtimestamp(contest.epoch_starttime, UTC),
        end=datetime.fromtimestamp(contest.epoch_endtime, UTC),
    )


PLATFORM = HackerrankPlatform()
