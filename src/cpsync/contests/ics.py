"""Contests as an RFC 5545 calendar.

Output is a pure function of the contests: DTSTAMP is when cpsync last changed the
contest, so an unchanged feed is byte-for-byte the same (and can carry an ETag).

A contest that cannot be written as iCalendar (a CR or LF in its URL, stored before the
parsers checked URLs) is left out of the calendar and logged once, so one bad row never
takes a whole feed down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from icalendar import Alarm, Calendar, Event, vDuration

from cpsync.contests.models import Contest, ContestStatus

log = logging.getLogger(__name__)

PRODID = "-//cpsync//contest calendar//EN"
REFRESH = timedelta(hours=1)

PLATFORM_LABELS: dict[str, str] = {
    "codeforces": "Codeforces",
    "leetcode": "LeetCode",
    "codechef": "CodeChef",
    "atcoder": "AtCoder",
    "hackerrank": "HackerRank",
    "geeksforgeeks": "GeeksforGeeks",
    "code360": "Code360",
}


class _Named(Protocol):
    @property
    def platform(self) -> str: ...

    @property
    def name(self) -> str: ...


def event_uid(platform: str, key: str) -> str:
    """Stable for the life of a contest: never derived from its time."""
    return f"{platform}-{key}@cpsync"


def event_summary(contest: _Named) -> str:
    return f"[{PLATFORM_LABELS.get(contest.platform, contest.platform)}] {contest.name}"


def build_calendar(
    contests: Iterable[Contest],
    *,
    name: str,
    reminder_minutes: Sequence[int] = (),
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # An X- property is written unescaped: a line break in it (a contest's name, for a
    # one-contest download) would make an invalid content line.
    calendar.add("x-wr-calname", " ".join(name.split()))
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    # An X- property has no known type: icalendar would write the timedelta as text.
    calendar.add("x-published-ttl", vDuration(REFRESH), encode=False)
    envelope = bytes(calendar.to_ical())
    reminders = tuple(reminder_minutes)
    shown = (rendered(contest, reminders) for contest in contests)
    events = b"".join(event for event in shown if event is not None)
    closing = envelope.rindex(b"END:VCALENDAR")
    return envelope[:closing] + events + envelope[closing:]


@dataclass(frozen=True, slots=True)
class _EventFacts:
    """Everything an event's text depends on: the cache key for its serialised form."""

    platform: str
    key: str
    name: str
    url: str
    start: datetime
    end: datetime
    status: str
    revision: int
    first_seen_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contest: Contest) -> _EventFacts:
        return cls(
            contest.platform,
            contest.key,
            contest.name,
            contest.url,
            contest.start,
            contest.end,
            contest.status,
            contest.revision,
            contest.first_seen_at,
            contest.updated_at,
        )


def rendered(contest: Contest, reminder_minutes: Sequence[int] = ()) -> bytes | None:
    """The contest's VEVENT as iCalendar text, or None when it cannot be written."""
    return _event_bytes(_EventFacts.of(contest), tuple(reminder_minutes))


# Every feed shows the same few hundred contests with one of a few reminder sets:
# serialise each once instead of once per feed request (icalendar costs ~1 ms an event).
# A failure is cached too, so a bad contest is logged once, not on every feed request.
@lru_cache(maxsize=50_000)
def _event_bytes(contest: _EventFacts, reminder_minutes: tuple[int, ...]) -> bytes | None:
    try:
        return bytes(_event(contest, reminder_minutes).to_ical())
    except ValueError as exc:
        log.warning(
            "contests.ics.event_skipped platform=%s key=%r reason=%r",
            contest.platform,
            contest.key,
            str(exc),
        )
        return None


def _event(contest: _EventFacts, reminder_minutes: Sequence[int]) -> Event:
    event = Event()
    event.add("uid", event_uid(contest.platform, contest.key))
    event.add("dtstamp", contest.updated_at)
    event.add("created", contest.first_seen_at)
    event.add("last-modified", contest.updated_at)
    event.add("sequence", contest.revision - 1)
    event.add("summary", event_summary(contest))
    event.add("description", f"{contest.name}\n{contest.url}")
    event.add("location", contest.url)
    event.add("url", contest.url)
    event.add("dtstart", contest.start)
    event.add("dtend", contest.end)
    event.add("categories", [PLATFORM_LABELS.get(contest.platform, contest.platform)])
    cancelled = contest.status == ContestStatus.CANCELLED
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    if not cancelled:
        for minutes in reminder_minutes:
            event.add_component(_alarm(contest, minutes))
    return event


def _alarm(contest: _EventFacts, minutes: int) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", event_summary(contest))
    alarm.add("trigger", timedelta(minutes=-minutes))
    return alarm
