"""Contests as an RFC 5545 calendar.

Output is a pure function of the contests: DTSTAMP is when cpsync last changed the
contest, so an unchanged feed is byte-for-byte the same (and can carry an ETag).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from icalendar import Alarm, Calendar, Event, vDuration

from cpsync.contests.models import Contest, ContestStatus

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
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    # An X- property has no known type: icalendar would write the timedelta as text.
    calendar.add("x-published-ttl", vDuration(REFRESH), encode=False)
    envelope = bytes(calendar.to_ical())
    reminders = tuple(reminder_minutes)
    events = b"".join(_event_bytes(_EventFacts.of(contest), reminders) for contest in contests)
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


# Every feed shows the same few hundred contests with one of a few reminder sets:
# serialise each once instead of once per feed request (icalendar costs ~1 ms an event).
@lru_cache(maxsize=50_000)
def _event_bytes(contest: _EventFacts, reminder_minutes: tuple[int, ...]) -> bytes:
    return bytes(_event(contest, reminder_minutes).to_ical())


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
