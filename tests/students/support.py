"""Builders for the integrated student tests: a coach, a client over the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cpsync.accounts.models import User
from cpsync.cache import MemoryCache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.notify.email import Email
from cpsync.pacing import Pacer
from cpsync.settings import Settings
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.models import Student
from cpsync.students.reminders import ReminderService
from cpsync.students.sync import StudentSyncService, SyncConfig

from .simulated_codeforces import SimulatedCodeforces

SIM_BASE = "http://codeforces.test"


class CountingThrottle:
    def __init__(self) -> None:
        self.acquired = 0

    async def acquire(self) -> None:
        self.acquired += 1


def paced(base_url: str, throttle: Pacer) -> dict[str, Pacer]:
    """`HttpClient(pacers=...)` as `open_resources` builds it: Codeforces' host waits on
    the throttle."""
    return {urlsplit(base_url).netloc: throttle}


@dataclass
class RecordingMailer:
    sent: list[Email] = field(default_factory=list)
    fail_times: int = 0

    async def send(self, email: Email) -> None:
        from cpsync.notify.email import EmailDeliveryError

        if self.fail_times > 0:
            self.fail_times -= 1
            raise EmailDeliveryError("smtp: 451 try again later")
        self.sent.append(email)


async def no_sleep(_seconds: float) -> None:
    return None


async def add_coach(db: Database, email: str = "coach@example.com", role: str = "coach") -> int:
    now = datetime.now(UTC)
    async with db.session() as session, session.begin():
        user = User(email=email, display_name="Coach", role=role, created_at=now, updated_at=now)
        session.add(user)
        await session.flush()
        return user.id


async def add_student(
    db: Database, coach_id: int, handle: str, *, created_at: datetime, **extra: object
) -> int:
    async with db.session() as session, session.begin():
        values: dict[str, object] = {
            "name": handle.title(),
            "email": f"{handle.lower()}@example.com",
            "phone": "",
            "group_name": "",
            "timezone": "UTC",
            "reminders_enabled": True,
            "pending_verdicts": False,
            "needs_full_sync": True,
            "reminders_sent": 0,
        } | extra
        student = Student(
            coach_id=coach_id,
            handle=handle,
            handle_key=handle.casefold(),
            created_at=created_at,
            updated_at=created_at,
            **values,
        )
        session.add(student)
        await session.flush()
        return student.id


@asynccontextmanager
async def sync_service(
    db: Database,
    sim: SimulatedCodeforces,
    clock: Clock,
    mailer: RecordingMailer | None = None,
    cache: MemoryCache | None = None,
    locks: MemoryLocks | None = None,
) -> AsyncIterator[StudentSyncService]:
    settings = Settings(_env_file=None, http_max_retries=0, http_min_interval_seconds=0)  # type: ignore[call-arg]
    async with HttpClient(settings, transport=sim.transport()) as http:
        client = CodeforcesClient(http, CodeforcesClientConfig(base_url=SIM_BASE), sleep=no_sleep)
        reminders = ReminderService(db, mailer or RecordingMailer(), clock)
        yield StudentSyncService(
            db,
            client,
            cache or MemoryCache(),
            locks or MemoryLocks(),
            clock,
            config=SyncConfig(),
            after_sync=reminders,
            sleep=no_sleep,
        )
