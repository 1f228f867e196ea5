"""The shapes the contests domain hands out: `ContestSnapshot` (what other domains read of a
contest, from `ContestRepository`) and the API shapes, which pages render too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlencode

from pydantic import BaseModel

from cpsync.contests.ics import PLATFORM_LABELS, event_summary
from cpsync.contests.models import Contest


@dataclass(frozen=True, slots=True)
class ContestSnapshot:
    """The fields of a contest other domains read (a plain copy of the row)."""

    platform: str
    key: str
    name: str
    url: str
    start: datetime
    end: datetime
    duration_seconds: int
    status: str
    revision: int

    @property
    def event_key(self) -> tuple[str, str]:
        return (self.platform, self.key)


class ContestOut(BaseModel):
    platform: str
    key: str
    name: str
    url: str
    start: datetime
    end: datetime
    duration_seconds: int
    status: str
    google_calendar_url: str
    ics_url: str

    @classmethod
    def of(cls, contest: Contest) -> ContestOut:
        platform, key = quote(contest.platform, safe=""), quote(contest.key, safe="")
        return cls(
            platform=contest.platform,
            key=contest.key,
            name=contest.name,
            url=contest.url,
            start=contest.start,
            end=contest.end,
            duration_seconds=contest.duration_seconds,
            status=contest.status,
            google_calendar_url=google_calendar_url(contest),
            ics_url=f"/contests/{platform}/{key}.ics",
        )

    @property
    def label(self) -> str:
        return PLATFORM_LABELS.get(self.platform, self.platform)


class ContestPage(BaseModel):
    items: list[ContestOut]
    total: int
    limit: int
    offset: int


HealthState = Literal["ok", "stale", "failing", "never"]


class HealthOut(BaseModel):
    platform: str
    label: str
    state: HealthState
    last_success_at: datetime | None
    last_error: str | None


def _google_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(contest: Contest) -> str:
    """Google Calendar's "add event" template link for one contest."""
    query = urlencode(
        {
            "action": "TEMPLATE",
            "text": event_summary(contest),
            "dates": f"{_google_time(contest.start)}/{_google_time(contest.end)}",
            "details": f"{contest.name}\n{contest.url}",
            "location": contest.url,
        }
    )
    return f"https://calendar.google.com/calendar/render?{query}"
