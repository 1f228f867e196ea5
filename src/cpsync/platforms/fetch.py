"""Fetch one platform's contest list: the only place platforms meet the network.

A fetch never raises: it returns a `FetchOutcome` whose `error` says why it failed,
so one platform's trouble cannot spoil another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cpsync.http import HttpClient, UpstreamError
from cpsync.platforms.base import ParsedContest, ParseError, Platform


@dataclass(slots=True)
class FetchOutcome:
    platform: str
    fetched_at: datetime
    contests: list[ParsedContest] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def complete(self) -> bool:
        """Every listed item understood: only then does absence mean anything."""
        return self.ok and not self.skipped


async def fetch_platform(
    http: HttpClient,
    platform: Platform,
    base_url: str,
    fetched_at: datetime,
    *,
    max_contests: int,
    max_bytes: int,
) -> FetchOutcome:
    """`max_contests`: an answer with more upcoming contests than this is a failed fetch;
    so is one longer than `max_bytes`, which is not read any further."""
    outcome = FetchOutcome(platform.name, fetched_at)
    request = platform.request(base_url)
    try:
        response = await http.request(
            request.method,
            request.url,
            headers=request.headers,
            json_body=request.json_body,
            max_bytes=max_bytes,
        )
        result = platform.parse(response.body, fetched_at)
    except (UpstreamError, ParseError) as exc:
        outcome.error = exc.message
        return outcome
    outcome.skipped = result.skipped
    if result.items_seen == 0:
        # An empty list is how broken sites often fail; it must never look like "no contests".
        outcome.error = f"{platform.name}: the response listed no contests at all"
        return outcome
    if result.skipped and not result.contests:
        # Every item failed to parse: the site changed its schema, not its contests.
        outcome.error = (
            f"{platform.name}: all {len(result.skipped)} items malformed ({result.skipped[0]})"
        )
        return outcome
    if len(result.contests) > max_contests:
        # Real platforms list tens of upcoming contests; tens of thousands would swamp
        # every page and feed that shows them, so the answer is refused whole.
        outcome.error = (
            f"{platform.name}: the response listed {len(result.contests)} upcoming contests, "
            f"over the limit of {max_contests} (CPSYNC_MAX_CONTESTS_PER_PLATFORM); none stored"
        )
        return outcome
    outcome.contests = _unique_by_key(result.contests, outcome.skipped)
    return outcome


def _unique_by_key(contests: list[ParsedContest], skipped: list[str]) -> list[ParsedContest]:
    seen: dict[str, ParsedContest] = {}
    for contest in contests:
        if contest.key in seen:
            skipped.append(f"duplicate key {contest.key!r}")
            continue
        seen[contest.key] = contest
    return list(seen.values())
