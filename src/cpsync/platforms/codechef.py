"""CodeChef: the JSON list behind its contests page, `/api/list/contests/all`."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

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

NAME = "codechef"
_INDIA = ZoneInfo("Asia/Kolkata")


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str
    message: str | None = None
    present_contests: list[Any] | None = None
    future_contests: list[Any] | None = None


class _Contest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    contest_code: str
    contest_name: str
    contest_start_date_iso: str
    contest_end_date_iso: str
    contest_duration: str | int | None = None


class CodechefPlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        query = "sort_by=START&sorting_order=asc&offset=0&mode=all"
        return PlatformRequest(
            "GET", f"{base_url}/api/list/contests/all?{query}", dict(BROWSER_HEADERS)
        )

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        items = _contest_items(payload)
        return collect(ParseResult(), items, _build, fetched_at)


def _contest_items(payload: bytes) -> list[Any]:
    envelope = _envelope(payload)
    if envelope.status != "success":
        detail = (envelope.message or "no message")[:200]
        raise ParseError(f"API answered {envelope.status[:50]!r}: {detail}", platform=NAME)
    if envelope.present_contests is None and envelope.future_contests is None:
        raise ParseError("neither `present_contests` nor `future_contests`", platform=NAME)
    # Running contests move from future_contests to present_contests; keep them until they end.
    return [*(envelope.present_contests or []), *(envelope.future_contests or [])]


def _envelope(payload: bytes) -> _Envelope:
    return load_envelope(payload, _Envelope, NAME)


def _build(item: Any) -> ParsedContest:
    contest = _Contest.model_validate(item)
    start = _india_time(contest.contest_start_date_iso)
    end = _india_time(contest.contest_end_date_iso)
    return make_contest(
        NAME,
        key=contest.contest_code,
        name=contest.contest_name,
        url=f"https://www.codechef.com/{contest.contest_code.strip()}",
        start=start,
        end=end,
        duration_seconds=_stated_seconds(contest.contest_duration, start, end),
    )


def _india_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    # The ISO fields carry +05:30 today; a naive one can only mean the same clock.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_INDIA)


def _stated_seconds(minutes: str | int | None, start: datetime, end: datetime) -> int:
    """The platform's own duration, which for multi-day contests differs from end - start."""
    try:
        stated = int(str(minutes).strip())
    except ValueError:
        stated = -1
    if stated >= 0:
        return stated * 60
    return int((end - start).total_seconds())


PLATFORM = CodechefPlatform()
