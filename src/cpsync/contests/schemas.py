"""The contests domain's API shapes; pages render the same objects."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from cpsync.contests.ics import PLATFORM_LABELS


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
