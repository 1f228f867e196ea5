"""Page-shaped data for the student templates (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from cpsync.students.dashboard import PeriodChoice

# Codeforces' own rank colours, as CSS classes (no inline styles under our CSP).
RANK_CLASSES = {
    "newbie": "rank-newbie",
    "pupil": "rank-pupil",
    "specialist": "rank-specialist",
    "expert": "rank-expert",
    "candidate master": "rank-cm",
    "master": "rank-master",
    "international master": "rank-master",
    "grandmaster": "rank-gm",
    "international grandmaster": "rank-gm",
    "legendary grandmaster": "rank-lgm",
}
HEATMAP_MAX_DAYS = 371  # 53 weeks: the "all" heat map shows the last year


def rank_class(rank: str | None) -> str:
    return RANK_CLASSES.get((rank or "").lower(), "rank-unrated")


def profile_url(handle: str) -> str:
    return f"https://codeforces.com/profile/{handle}"


def period_notice(what: str, choice: PeriodChoice, offered: tuple[int | None, ...]) -> str | None:
    """Say so when a filter in the address is not one we offer, rather than quietly
    showing another period (an edited or stale link)."""
    if choice.asked is None:
        return None
    options = ", ".join(f"{days}" for days in offered if days is not None)
    shown = f"the last {choice.days} days" if choice.days else "all time"
    return (
        f"“{choice.asked[:20]}” is not a period for {what} (choose {options} days or All); "
        f"showing {shown}."
    )


def return_path(referer: str | None, own_host: str, fallback: str = "/students") -> str:
    """The page to go back to after a plain form post: the referring page when it is
    one of ours (same host, or a bare path), else `fallback`, so a crafted Referer
    cannot make us redirect anywhere else (`//evil.example`, `/\\evil.example`)."""
    parts = urlsplit(referer or "")
    foreign = (parts.scheme or parts.netloc) and (
        parts.scheme not in ("http", "https") or parts.netloc != own_host
    )
    path = parts.path
    if foreign or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return fallback
    target = f"{path}?{parts.query}" if parts.query else path
    return target if target.isprintable() else fallback


@dataclass(frozen=True, slots=True)
class HeatCell:
    day: str
    submissions: int
    accepted: int
    level: int  # 0..4
    weekday: int  # 0 = Monday

    @property
    def tooltip(self) -> str:
        plural = "" if self.submissions == 1 else "s"
        return f"{self.day}: {self.submissions} submission{plural}, {self.accepted} accepted"


def heat_cells(heatmap: list[dict[str, Any]], today: date, days: int | None) -> list[HeatCell]:
    """Every day of the period (capped at a year), oldest first, with a 0-4 level."""
    span = min(days or HEATMAP_MAX_DAYS, HEATMAP_MAX_DAYS)
    counts = {item["day"]: item for item in heatmap}
    peak = max((item["submissions"] for item in heatmap), default=0)
    cells = []
    for offset in range(span - 1, -1, -1):
        day = today - timedelta(days=offset)
        item = counts.get(day.isoformat(), {"submissions": 0, "accepted": 0})
        level = 0 if not item["submissions"] else 1 + min(3, 4 * item["submissions"] // (peak + 1))
        cells.append(
            HeatCell(day.isoformat(), item["submissions"], item["accepted"], level, day.weekday())
        )
    return cells


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page
