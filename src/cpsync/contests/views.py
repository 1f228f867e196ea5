"""What pages and the API show about contests and platform health, built from rows. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from cpsync.contests.ics import PLATFORM_LABELS, event_summary
from cpsync.contests.models import Contest, PlatformHealth
from cpsync.contests.schemas import ContestOut, HealthOut, HealthState


@dataclass(frozen=True, slots=True)
class ContestFilters:
    platforms: list[str]
    days: int | None
    q: str


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


def contest_view(contest: Contest) -> ContestOut:
    return ContestOut(
        platform=contest.platform,
        key=contest.key,
        name=contest.name,
        url=contest.url,
        start=contest.start,
        end=contest.end,
        duration_seconds=contest.duration_seconds,
        status=contest.status,
        google_calendar_url=google_calendar_url(contest),
        ics_url=f"/contests/{quote(contest.platform, safe='')}/{quote(contest.key, safe='')}.ics",
    )


def filter_contests(
    contests: Iterable[Contest], filters: ContestFilters, now: datetime
) -> list[Contest]:
    needle = filters.q.strip().casefold()
    horizon = now + timedelta(days=filters.days) if filters.days is not None else None
    return [
        contest
        for contest in contests
        if (not filters.platforms or contest.platform in filters.platforms)
        and (horizon is None or contest.start < horizon)
        and (not needle or needle in contest.name.casefold())
    ]


def health_views(
    rows: Mapping[str, PlatformHealth],
    platforms: Sequence[str],
    now: datetime,
    stale_after: timedelta,
) -> list[HealthOut]:
    views = []
    for name in platforms:
        row = rows.get(name)
        views.append(
            HealthOut(
                platform=name,
                label=PLATFORM_LABELS.get(name, name),
                state=_state(row, now, stale_after),
                last_success_at=row.last_success_at if row else None,
                last_error=row.last_error if row and row.consecutive_failures else None,
            )
        )
    return views


def _state(row: PlatformHealth | None, now: datetime, stale_after: timedelta) -> HealthState:
    if row is None or row.last_attempt_at is None:
        return "never"
    if row.consecutive_failures > 0:
        return "failing"
    if row.last_success_at is None or now - row.last_success_at > stale_after:
        return "stale"
    return "ok"
