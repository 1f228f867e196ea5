"""AtCoder: the contests page (HTML, there is no API), upcoming and running tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from cpsync.platforms.base import (
    BROWSER_HEADERS,
    ParsedContest,
    ParseError,
    ParseResult,
    PlatformRequest,
    collect,
    make_contest,
)

NAME = "atcoder"
_JST = timezone(timedelta(hours=9), "JST")
# A running contest moves from the upcoming table to the action one; read both so it
# stays listed until it ends.
_TABLES = ("#contest-table-action", "#contest-table-upcoming")
_CONTEST_HREF = re.compile(r"/contests/([^/?#\s]+)")
_DURATION = re.compile(r"(\d+):([0-5]\d)")


@dataclass(frozen=True, slots=True)
class _Row:
    """The text of one table row; any cell may be missing when the markup changes."""

    start_text: str | None
    href: str | None
    name: str | None
    duration_text: str | None


class AtcoderPlatform:
    name = NAME

    def request(self, base_url: str) -> PlatformRequest:
        return PlatformRequest("GET", f"{base_url}/contests/?lang=en", dict(BROWSER_HEADERS))

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult:
        rows = [_read_row(row) for row in _table_rows(payload)]
        return collect(ParseResult(), rows, _build, fetched_at)


def _table_rows(payload: bytes) -> list[LexborNode]:
    # Decode ourselves so that stray bytes become U+FFFD instead of an exception.
    text = payload.decode("utf-8", errors="replace")
    try:
        tree = LexborHTMLParser(text)
        tables = [table for selector in _TABLES if (table := tree.css_first(selector))]
    except (SelectolaxError, RuntimeError, ValueError) as exc:
        raise ParseError(f"page could not be parsed ({exc})", platform=NAME) from exc
    if not tables:
        raise ParseError(
            "no upcoming or running contest table (markup changed or not a contests page)",
            platform=NAME,
        )
    return [row for table in tables for row in table.css("tbody tr")]


def _read_row(row: LexborNode) -> _Row:
    cells = row.css("td")
    time = cells[0].css_first("time") if cells else None
    link = cells[1].css_first("a[href*='/contests/']") if len(cells) > 1 else None
    return _Row(
        start_text=time.text() if time is not None else None,
        href=link.attributes.get("href") if link is not None else None,
        name=link.text() if link is not None else None,
        # Only the contests page has this column; the home page's tables lack it.
        duration_text=cells[2].text() if len(cells) > 2 else None,
    )


def _build(row: _Row) -> ParsedContest:
    start = _parse_start(_required(row.start_text, "start time"))
    slug = _slug(_required(row.href, "contest link"))
    duration = _parse_duration(_required(row.duration_text, "duration"))
    return make_contest(
        NAME,
        key=slug,
        name=row.name,
        url=f"https://atcoder.jp/contests/{slug}",
        start=start,
        end=start + timedelta(seconds=duration),
        duration_seconds=duration,
    )


def _required(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise ValueError(f"missing {what}")
    return value


def _parse_start(text: str) -> datetime:
    # Reformatted pages break the line inside <time>: "2020-02-15\n    19:00:00+0900".
    moment = datetime.fromisoformat(" ".join(text.split()))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_JST)


def _slug(href: str) -> str:
    match = _CONTEST_HREF.search(href)
    if match is None:
        raise ValueError(f"not a contest link: {href[:100]!r}")
    return match.group(1)


def _parse_duration(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"unreadable duration {text.strip()[:20]!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    return hours * 3600 + minutes * 60


PLATFORM = AtcoderPlatform()
