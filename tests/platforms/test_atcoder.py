from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cpsync.platforms.atcoder import PLATFORM, _parse_start
from cpsync.platforms.base import ParseError

from .conftest import shared_file, shared_files

PAGES_WITH_UPCOMING = [
    path for path in shared_files("atcoder", "*.html") if "upcoming" in path.stem
]
CONTESTS_PAGE = "atcoder/contests-page-en-upcoming-2026-06-13-oiertool.html"
JA_HOME_PAGE = "atcoder/home-page-ja-upcoming-2020-01-27.html"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _recorded_on(path: Path) -> datetime:
    match = re.search(r"\d{4}-\d{2}-\d{2}", path.stem)
    assert match is not None, "recording names carry their date"
    return datetime.fromisoformat(match.group()).replace(tzinfo=UTC)


def _page(*tables: tuple[str, str]) -> bytes:
    """A contests page with the given (table id, tbody rows) pairs."""
    divs = "".join(
        f'<div id="{table_id}"><table><thead><tr><th>Start Time</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
        for table_id, rows in tables
    )
    return f"<!DOCTYPE html><html><body>{divs}</body></html>".encode()


def _row(start: str, href: str, name: str, duration: str) -> str:
    return (
        f"<tr><td><a href='http://www.timeanddate.com/'><time class='fixtime fixtime-full'>"
        f"{start}</time></a></td>"
        f"<td><span title='Algorithm'>Ⓐ</span><span class='user-blue'>◉</span> "
        f'<a href="{href}">{name}</a></td>'
        f"<td class='text-center'>{duration}</td><td> - 1999</td></tr>"
    )


@pytest.mark.parametrize("path", PAGES_WITH_UPCOMING, ids=lambda path: path.stem)
def test_reads_every_row_of_recorded_upcoming_tables(path: Path) -> None:
    fetched_at = _recorded_on(path)

    result = PLATFORM.parse(path.read_bytes(), fetched_at)

    assert result.items_seen >= 2
    if "contests-page" in path.stem:
        # The contests page, which is what we fetch, has a duration column.
        assert result.skipped == []
        assert len(result.contests) == result.items_seen
    else:
        # Home pages list start and name only: no duration, so no calendar entry.
        assert result.contests == []
        assert all(reason.endswith("missing duration") for reason in result.skipped)
        assert len(result.skipped) == result.items_seen
    for contest in result.contests:
        assert contest.url == f"https://atcoder.jp/contests/{contest.key}"
        assert contest.start > fetched_at


def test_contests_page_exactly() -> None:
    payload = shared_file(CONTESTS_PAGE).read_bytes()

    result = PLATFORM.parse(payload, datetime(2026, 6, 13, 0, 0, tzinfo=UTC))

    assert result.items_seen == 8
    assert [c.key for c in result.contests] == [
        "abc462",
        "arc222",
        "abc463",
        "ahc067",
        "abc464",
        "arc223",
        "abc465",
        "abc466",
    ]
    abc462 = result.contests[0]
    assert abc462.name == "CodeQUEEN 2026 -qual- (AtCoder Beginner Contest 462)"
    assert abc462.start == datetime(2026, 6, 13, 12, 0, tzinfo=UTC)
    assert abc462.end == datetime(2026, 6, 13, 13, 40, tzinfo=UTC)
    assert abc462.duration_seconds == 6000
    assert abc462.url == "https://atcoder.jp/contests/abc462"
    ahc067 = result.contests[3]
    assert ahc067.start == datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
    assert ahc067.duration_seconds == 4 * 3600
    assert result.contests[4].name == (
        "第七回日本最強プログラマー学生選手権～Advance～ -予選- （AtCoder Beginner Contest 464）"  # noqa: RUF001 - AtCoder's own full-width punctuation
    )


def test_japanese_home_page_time_with_line_breaks_is_read() -> None:
    payload = shared_file(JA_HOME_PAGE).read_bytes()

    result = PLATFORM.parse(payload, datetime(2020, 1, 27, tzinfo=UTC))

    # The start time is read before the duration, so a skip for the duration
    # means the broken-up <time> text and the link were understood.
    assert result.items_seen == 2
    assert result.skipped == ["item 0: missing duration", "item 1: missing duration"]
    assert _parse_start(
        "2020-02-15\n                                                                19:00:00+0900"
    ) == datetime(2020, 2, 15, 10, 0, tzinfo=UTC)


def test_archive_page_without_upcoming_table_is_a_parse_error() -> None:
    payload = shared_file("atcoder/contests-archive-2025-10-cpnvim.html").read_bytes()

    with pytest.raises(ParseError, match=r"^atcoder: no upcoming or running contest table"):
        PLATFORM.parse(payload, datetime(2025, 10, 5, tzinfo=UTC))


def test_running_and_upcoming_tables_are_both_read() -> None:
    payload = _page(
        (
            "contest-table-action",
            _row(
                "2026-11-13 21:00:00+0900",
                "/contests/ahc070",
                "AtCoder Heuristic Contest 070",
                "240:00",
            ),
        ),
        (
            "contest-table-upcoming",
            _row(
                "2026-11-28 21:00:00+0900",
                "/contests/abc482",
                "AtCoder Beginner Contest 482",
                "01:40",
            ),
        ),
    )

    result = PLATFORM.parse(payload, NOW)

    assert [c.key for c in result.contests] == ["ahc070", "abc482"]
    long_run = result.contests[0]
    assert long_run.start == datetime(2026, 11, 13, 12, 0, tzinfo=UTC)
    assert long_run.duration_seconds == 240 * 3600
    assert long_run.end == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_time_without_offset_is_read_as_japan_time() -> None:
    payload = _page(
        (
            "contest-table-upcoming",
            _row(
                "2026-12-05 21:00:00",
                "https://atcoder.jp/contests/abc483?lang=en",
                "AtCoder Beginner Contest 483",
                "01:40",
            ),
        )
    )

    (contest,) = PLATFORM.parse(payload, NOW).contests

    assert contest.key == "abc483"
    assert contest.start == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_bad_rows_are_skipped_and_counted() -> None:
    rows = "".join(
        [
            _row("soon", "/contests/abc484", "Bad time", "01:40"),
            _row("2026-12-12 21:00:00+0900", "/rankings", "Not a contest link", "01:40"),
            _row("2026-12-12 21:00:00+0900", "/contests/abc485", "Bad duration", "100 min"),
            "<tr><td colspan='4'>No upcoming contests</td></tr>",
            _row(
                "2026-12-19 21:00:00+0900",
                "/contests/abc486",
                "AtCoder Beginner Contest 486",
                "01:40",
            ),
        ]
    )

    result = PLATFORM.parse(_page(("contest-table-upcoming", rows)), NOW)

    assert [c.key for c in result.contests] == ["abc486"]
    assert result.items_seen == 5
    assert len(result.skipped) == 4


def test_empty_upcoming_table_is_an_empty_result() -> None:
    result = PLATFORM.parse(_page(("contest-table-upcoming", "")), NOW)

    assert result.items_seen == 0
    assert result.contests == []


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe not html", b'{"contests": []}', _page(("contest-table-recent", ""))],
    ids=["empty", "binary", "json", "recent-table-only"],
)
def test_pages_without_contest_tables_raise_atcoder_parse_error(payload: bytes) -> None:
    with pytest.raises(ParseError, match=r"^atcoder: "):
        PLATFORM.parse(payload, NOW)
