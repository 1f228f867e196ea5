"""GeeksforGeeks: the practice API's event list, `/api/vr/events/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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

NAME = "geeksforgeeks"
_INDIA = ZoneInfo("Asia/Kolkata")


class _Results(BaseModel):
    model_config = ConfigDict(extra="ignore")

    upcoming: list[Any]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    results: _Results


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    slug: str
    name: str
    start_time: str
    end_time: str


class GeeksforgeeksPlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        query = "page_number=1&sub_type=all&type=contest"
        return PlatformRequest("GET", f"{base_url}/api/vr/events/?{query}", dict(BROWSER_HEADERS))

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        items = _envelope(payload).results.upcoming
        return collect(ParseResult(), items, _build, fetched_at)


def _envelope(payload: bytes) -> _Envelope:
    return load_envelope(payload, _Envelope, NAME)


def _build(item: Any) -> ParsedContest:
    event = _Event.model_validate(item)
    return make_contest(
        NAME,
        key=event.slug,
        name=event.name,
        url=f"https://practice.geeksforgeeks.org/contest/{event.slug.strip()}",
        start=_india_time(event.start_time),
        end=_india_time(event.end_time),
    )


def _india_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    # GfG sends wall-clock India time without an offset; honour one if it ever appears.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_INDIA)


PLATFORM = GeeksforgeeksPlatform()
