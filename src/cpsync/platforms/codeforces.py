"""Codeforces: the official JSON API, `contest.list`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from cpsync.platforms.base import (
    ParsedContest,
    ParseError,
    ParseResult,
    PlatformRequest,
    collect,
    make_contest,
)

NAME = "codeforces"
_LISTED_PHASES = frozenset({"BEFORE", "CODING"})


class _Contest(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel)

    id: int
    name: str
    phase: str
    duration_seconds: int
    start_time_seconds: int | None = None


class CodeforcesPlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        return PlatformRequest("GET", f"{base_url}/api/contest.list?gym=false")

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        items = _result_items(payload)
        return collect(ParseResult(), items, _build, fetched_at)


def _result_items(payload: bytes) -> list[Any]:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ParseError(f"not JSON ({exc})", platform=NAME) from exc
    # Some recorders keep only the `result` array; accept both shapes.
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise ParseError("unexpected top-level value", platform=NAME)
    if document.get("status") != "OK":
        comment = str(document.get("comment", "no comment"))[:200]
        raise ParseError(f"API answered FAILED: {comment}", platform=NAME)
    items = document.get("result")
    if not isinstance(items, list):
        raise ParseError("`result` is not a list", platform=NAME)
    return items


def _build(item: Any) -> ParsedContest | None:
    contest = _Contest.model_validate(item)
    if contest.phase not in _LISTED_PHASES:
        return None
    if contest.start_time_seconds is None:
        return None  # announced without a date: nothing to put in a calendar yet
    start = datetime.fromtimestamp(contest.start_time_seconds, UTC)
    return make_contest(
        NAME,
        key=contest.id,
        name=contest.name,
        url=f"https://codeforces.com/contests/{contest.id}",
        start=start,
        end=start + timedelta(seconds=contest.duration_seconds),
        duration_seconds=contest.duration_seconds,
    )


PLATFORM = CodeforcesPlatform()
