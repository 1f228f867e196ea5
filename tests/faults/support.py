"""What the fault trials share: the deployment's processes, the seeded data, the checks
made after recovery, and the table of results.

A trial's processes are real `cpsync worker` / `cpsync scheduler` subprocesses, each in
its own process group so SIGKILL reaches the taskiq child too; their output goes to a
log file in the trial's folder (kept by pytest for a failed trial).
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import redis
from aiosmtpd.controller import Controller
from icalendar import Calendar
from sqlalchemy import text

from cpsync.accounts.crypto import parse_keys
from cpsync.calendars.models import CalendarLink, LinkKind, LinkState
from cpsync.contests.ics import event_uid
from cpsync.contests.models import Contest, ContestStatus
from cpsync.db import open_database
from cpsync.queue import kick, make_broker
from cpsync.settings import Settings
from cpsync.students.models import StudentSettings
from tests.calendars.service_support import add_user
from tests.conftest import REPO_ROOT
from tests.net import free_port
from tests.replay import ReplayServer, Reply
from tests.students.conftest import OWN, recording
from tests.students.support import add_coach, add_student
from tests.waiting import wait_until

CLI = "from cpsync.cli import app; app()"
HANDLE = "Sehnsucht"  # the student whose Codeforces answers are recorded
# Generous: CI is a loaded 2-core machine. A trial that does not recover within this
# counts what is still missing; the deadline is a safety net, not a measurement.
RECOVERY_TIMEOUT = float(os.environ.get("CPSYNC_FAULT_RECOVERY_TIMEOUT", "120"))


# ---------------------------------------------------------------- results


@dataclass
class TrialRow:
    trial: str
    broker: str
    tasks_lost: int
    duplicate_events: int
    duplicate_emails: int
    jobs_not_final: int
    scheduler_alive: bool
    recovery_seconds: float | None
    note: str = ""


COLUMNS = (
    "trial",
    "broker",
    "tasks lost",
    "dup events",
    "dup emails",
    "jobs not final",
    "scheduler alive",
    "recovery s",
    "note",
)


# Every trial's row, in the order they ran; printed by the conftest's terminal summary.
ROWS: list[TrialRow] = []


def format_table(rows: list[TrialRow]) -> str:
    cells = [
        (
            row.trial,
            row.broker,
            str(row.tasks_lost),
            str(row.duplicate_events),
            str(row.duplicate_emails),
            str(row.jobs_not_final),
            "yes" if row.scheduler_alive else "NO",
            "-" if row.recovery_seconds is None else f"{row.recovery_seconds:.1f}",
            row.note,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [COLUMNS, *cells]) for i in range(len(COLUMNS))]

    def line(values: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(c) for c in cells)])


def assert_clean(row: TrialRow) -> None:
    """The trial's promise: nothing lost, nothing twice, everything finished."""
    assert (
        row.tasks_lost,
        row.duplicate_events,
        row.duplicate_emails,
        row.jobs_not_final,
        row.scheduler_alive,
    ) == (0, 0, 0, 0, True), row


# ---------------------------------------------------------------- processes


@dataclass
class Deployment:
    env: dict[str, str]
    settings: Settings
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, command: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{command}-{len(self.processes)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, command],
            cwd=REPO_ROOT,
            env=self.env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start("worker")

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self.start("scheduler")

    def stop_all(self) -> None:
        for process in self.processes:
            kill_hard(process)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """kill -9 of the process group (`cpsync worker` execs taskiq, which forks a child)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def kick_task(settings: Settings, task_name: str, *args: Any) -> bool:
    """Enqueue as a producer (the web process) would; False when the broker refused."""

    async def send() -> None:
        broker = make_broker(settings)
        await broker.startup()
        try:
            await kick(broker, task_name, *args)
        finally:
            await broker.shutdown()

    try:
        asyncio.run(asyncio.wait_for(send(), 15))
    except Exception:  # refused, reset, timed out: the producer saw an error
        return False
    return True


# ---------------------------------------------------------------- database


async def _execute(settings: Settings, statement: str, params: dict[str, Any]) -> list[Any]:
    db = await open_database(settings, migrate=False)
    try:
        async with db.session() as session, session.begin():
            result = await session.execute(text(statement), params)
            return list(result.all()) if statement.lstrip().upper().startswith("SELECT") else []
    finally:
        await db.dispose()


def query(settings: Settings, statement: str, **params: Any) -> list[Any]:
    return asyncio.run(_execute(settings, statement, params))


def try_query(settings: Settings, statement: str, **params: Any) -> list[Any] | None:
    """None while the database does not answer."""
    try:
        return asyncio.run(asyncio.wait_for(_execute(settings, statement, params), 10))
    except Exception:
        return None


# Every row that stands for background work and what a final state is for it.
_NOT_FINAL = """
SELECT (SELECT count(*) FROM jobs WHERE state = 'running')
     + (SELECT count(*) FROM calendar_sync_runs WHERE status = 'running')
     + (SELECT count(*) FROM calendar_sync_requests WHERE state IN ('queued', 'running'))
     + (SELECT count(*) FROM student_sync_runs WHERE state = 'running')
     + (SELECT count(*) FROM student_reminders WHERE state = 'pending')
"""


def jobs_not_final(settings: Settings) -> int:
    rows = try_query(settings, _NOT_FINAL)
    return -1 if rows is None else int(rows[0][0])


def settle_jobs(settings: Settings, timeout: float) -> int:
    """Wait for every job row to reach a final state; what is still not final."""
    wait_until(lambda: jobs_not_final(settings) == 0, timeout)
    return jobs_not_final(settings)


async def _empty(settings: Settings) -> None:
    db = await open_database(settings)  # a fresh cluster: the migrations build the schema
    await db.dispose()


def migrate(settings: Settings) -> None:
    asyncio.run(_empty(settings))


# ---------------------------------------------------------------- calendars (CalDAV)


@dataclass(frozen=True)
class CalendarUser:
    user_id: int
    link_id: int
    collection: Path  # Radicale's folder for the collection


def add_contests(settings: Settings, count: int) -> list[str]:
    """`count` Codeforces contests, all upcoming by the real clock (the worker's)."""
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)

    async def add() -> None:
        db = await open_database(settings, migrate=False)
        try:
            async with db.session() as session, session.begin():
                for n in range(count):
                    start = first + timedelta(hours=3 * n)
                    session.add(
                        Contest(
                            platform="codeforces",
                            key=str(3000 + n),
                            name=f"Round {3000 + n}",
                            url=f"https://codeforces.com/contest/{3000 + n}",
                            start=start,
                            end=start + timedelta(hours=2),
                            duration_seconds=7200,
                            status=ContestStatus.SCHEDULED,
                            revision=1,
                            first_seen_at=first,
                            last_seen_at=first,
                            updated_at=first,
                        )
                    )
        finally:
            await db.dispose()

    asyncio.run(add())
    return [event_uid("codeforces", str(3000 + n)) for n in range(count)]


def add_calendar_users(
    settings: Settings, radicale_url: str, storage: Path, count: int
) -> list[CalendarUser]:
    """Users following Codeforces, each with a CalDAV link to an empty Radicale calendar."""
    keys = parse_keys(settings.encryption_keys)
    for n in range(count):
        made = httpx.request("MKCALENDAR", _collection_url(radicale_url, n), auth=_auth(n))
        assert made.status_code == 201, made.text

    async def add() -> list[CalendarUser]:
        db = await open_database(settings, migrate=False)
        users = []
        try:
            for n in range(count):
                user_id = await add_user(db, f"fan{n}@example.org", platforms=["codeforces"])
                now = datetime.now(UTC)
                async with db.session() as session, session.begin():
                    link = CalendarLink(
                        user_id=user_id,
                        kind=LinkKind.CALDAV,
                        target=_collection_url(radicale_url, n),
                        username=_auth(n)[0],
                        secret_encrypted=keys.encrypt(_auth(n)[1], "calendar_links.secret"),
                        state=LinkState.ACTIVE,
                        state_reason="",
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(link)
                    await session.flush()
                    link_id = link.id
                folder = storage / "collections" / "collection-root" / f"fan{n}" / f"contests-{n}"
                users.append(CalendarUser(user_id, link_id, folder))
        finally:
            await db.dispose()
        return users

    return asyncio.run(add())


def _collection_url(radicale_url: str, n: int) -> str:
    return f"{radicale_url}/fan{n}/contests-{n}/"


def _auth(n: int) -> tuple[str, str]:
    return f"fan{n}", "app-password"


def stored_uids(user: CalendarUser) -> Counter[str]:
    """How many VEVENTs with each UID the CalDAV server stores in the user's calendar."""
    found: Counter[str] = Counter()
    for path in user.collection.glob("*.ics"):
        try:
            calendar = Calendar.from_ical(path.read_bytes())
        except (OSError, ValueError):
            continue  # written at this moment: read again on the next look
        found.update(str(event["UID"]) for event in calendar.walk("VEVENT"))
    return found


def stored_count(user: CalendarUser) -> int:
    return len(list(user.collection.glob("*.ics")))


def duplicate_events(users: list[CalendarUser]) -> int:
    return sum(n - 1 for user in users for n in stored_uids(user).values() if n > 1)


def calendar_exact(user: CalendarUser, uids: list[str]) -> bool:
    return stored_uids(user) == Counter(uids)


def first_success_after(settings: Settings, moment: datetime) -> float | None:
    """Seconds from `moment` to the first calendar run that succeeded after it."""
    rows = try_query(
        settings,
        "SELECT min(finished_at) FROM calendar_sync_runs "
        "WHERE status = 'succeeded' AND finished_at >= :moment",
        moment=moment,
    )
    if not rows or rows[0][0] is None:
        return None
    finished: datetime = rows[0][0]
    return (finished.astimezone(UTC) - moment).total_seconds()


# ---------------------------------------------------------------- students


def serve_codeforces(replay: ReplayServer, *, first_status_delay: float = 0.0) -> None:
    """Codeforces for one student, answered with recorded responses; the first
    `user.status` answer can be held back, so a kill lands in the middle of the sync."""

    def reply(name: str) -> Reply:
        return Reply.file(recording(name))

    replay.routes[("GET", f"/api/user.info?checkHistoricHandles=true&handles={HANDLE}")] = [
        reply("user-info-Sehnsucht-protocol-relative-avatar-2019-izaron.json")
    ]
    status = reply("user-status-Sehnsucht-team-submissions-2019-izaron.json")
    held = Reply(status.status, status.body, status.headers, delay=first_status_delay)
    replay.routes[("GET", f"/api/user.status?count=1000&from=1&handle={HANDLE}")] = (
        [held, status] if first_status_delay else [status]
    )
    replay.routes[("GET", f"/api/user.rating?handle={HANDLE}")] = [
        reply("user-rating-Sehnsucht-119-changes-2019-izaron.json")
    ]
    handmade = OWN / "problemset-problems-handmade.json"
    replay.routes[("GET", "/api/problemset.problems")] = [Reply.file(handmade)]


def status_requests(replay: ReplayServer) -> int:
    return sum(1 for _m, target, _h, _b in replay.requests if "/api/user.status" in target)


def add_coach_with_student(settings: Settings, sync_cron: str | None = None) -> int:
    """A coach tracking the recorded student, inactive since 2019 (a reminder is due)."""

    async def add() -> int:
        db = await open_database(settings, migrate=False)
        try:
            coach = await add_coach(db)
            created = datetime(2019, 1, 1, tzinfo=UTC)
            await add_student(db, coach, HANDLE, created_at=created)
            if sync_cron is not None:
                async with db.session() as session, session.begin():
                    session.add(
                        StudentSettings(
                            coach_id=coach, sync_cron=sync_cron, updated_at=datetime.now(UTC)
                        )
                    )
            return coach
        finally:
            await db.dispose()

    return asyncio.run(add())


def student_synced(settings: Settings) -> bool:
    """A run finished 'done' and the student's rows were stored."""
    rows = try_query(
        settings,
        "SELECT (SELECT count(*) FROM student_sync_runs WHERE state = 'done'),"
        " (SELECT count(*) FROM students WHERE last_synced_at IS NOT NULL)",
    )
    return rows is not None and rows[0][0] > 0 and rows[0][1] == 1


class HeldInbox:
    """An SMTP receiver that can keep the sender waiting after it has the message: the
    reply to DATA is held until `release()`, so a sender killed then never hears 250.

    As RFC 5321 has it, the receiver takes responsibility for a message only when it
    replies 250: a held message whose sender is gone by then was never delivered and is
    discarded. `messages` holds the delivered ones."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.held = 0  # messages whose sender was kept waiting for the reply
        self.dropped = 0  # held messages whose sender left before it could hear 250
        self.hold = False
        self._released = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        if self.hold and not self._released.is_set():
            self.held += 1
            try:
                while self.hold and not self._released.is_set():
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                # aiosmtpd cancels the session's handler when the peer's connection ends.
                self.dropped += 1
                raise
            if server.transport is None or server.transport.is_closing():
                self.dropped += 1
                return "421 Closing transmission channel"
        self.messages.append(message)
        return "250 OK"

    def release(self) -> None:
        self._released.set()

    def duplicates(self) -> int:
        sent = Counter(str(message["To"]) for message in self.messages)
        return sum(n - 1 for n in sent.values())


@contextmanager
def held_smtp_receiver() -> Iterator[tuple[HeldInbox, int]]:
    inbox = HeldInbox()
    port = free_port()  # aiosmtpd cannot take port 0 (stack.md)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        inbox.release()
        controller.stop()


def backdate_reminder_claims(settings: Settings, by: timedelta) -> None:
    """As if `by` had passed since every reminder was claimed (a real day, not waited)."""
    query(
        settings,
        "UPDATE student_reminders SET claimed_at = claimed_at - make_interval(secs => :seconds)",
        seconds=by.total_seconds(),
    )


# ---------------------------------------------------------------- the scheduler


_OCCURRENCE = re.compile(r":lock:fire:.*:(\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d)$")


def fired_occurrences(redis_url: str) -> set[str] | None:
    """The occurrences the schedulers claimed (their claims live in Redis); None while
    Redis does not answer."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return {
            key.decode()
            for key in client.scan_iter(match="*:lock:fire:*", count=1000)
            if _OCCURRENCE.search(key.decode())
        }
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
