"""Code360 (Naukri, formerly Coding Ninjas): the public contest list API."""

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

NAME = "code360"


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")

    events: list[Any]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: _Data


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slug: str
    name: str
    event_start_time: int
    event_end_time: int


class Code360Platform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        url = f"{base_url}/code360/api/v3/public_section/contest_list?page=1"
        return PlatformRequest("GET", url, dict(BROWSER_HEADERS))

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        # Upcoming events come first, so page 1 holds everything still to come.
        items = _envelope(payload).data.events
        return collect(ParseResult(), items, _build, fetched_at)


def _envelope(payload: bytes) -> _Envelope:
    return load_envelope(payload, _Envelope, NAME)


def _build(item: Any) -> ParsedContest:
    event = _Event.model_validate(item)
    # Registration opens days earlier; the contest itself is event_start_time.
    return make_contest(
        NAME,
        key=event.slug,
        name=event.name,
        url=f"https://www.naukri.com/code360/contests/{event.slug.strip()}",
        start=datetime.fromtimestamp(event.event_start_time, UTC),
        end=datetime.fromtimestamp(event.event_end_time, UTC),
    )


PLATFORM = Code360Platform()
