"""The events a user's calendars should hold: contests x the user's preferences. Pure.

The one filter is `cpsync.accounts.preferences.matches`, the same as the preview and the
ICS feed use, so the calendar never disagrees with what the page shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cpsync.accounts.preferences import Filters, matches
from cpsync.calendars.plan import DesiredEvent
from cpsync.contests.ics import PLATFORM_LABELS
from cpsync.contests.models import ContestStatus
from cpsync.contests.schemas import ContestSnapshot


@dataclass(frozen=True, slots=True)
class EventStyle:
    """How the user wants events to look: reminders (minutes before) and a Google colour."""

    reminders: tuple[int, ...] = ()
    colour: str | None = None


def zone_of(name: str) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def desired_events(
    contests: Iterable[ContestSnapshot], filters: Filters, zone: tzinfo, style: EventStyle
) -> list[DesiredEvent]:
    """One event per scheduled contest the user's filters keep.

    Cancelled contests and ones the filters drop are simply absent: the plan deletes
    whatever was pushed for them.
    """
    return [
        to_event(contest, style)
        for contest in contests
        if contest.status == ContestStatus.SCHEDULED and matches(contest, filters, zone)
    ]


def to_event(contest: ContestSnapshot, style: EventStyle) -> DesiredEvent:
    label = PLATFORM_LABELS.get(contest.platform, contest.platform)
    return DesiredEvent(
        platform=contest.platform,
        key=contest.key,
        revision=contest.revision,
        summary=f"[{label}] {contest.name}",
        description=f"{contest.name} on {label}\n{contest.url}",
        url=contest.url,
        start=contest.start,
        end=contest.end,
        reminders=style.reminders,
        colour=style.colour,
    )
