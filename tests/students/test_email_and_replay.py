"""A reminder through a real SMTP receiver (aiosmtpd), a sync over the real recorded
Codeforces answers (replay server), and the scheduler's jobs from stored settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cpsync.cache import MemoryCache
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.notify.email import EmailDeliveryError, SmtpConfig, SmtpMailer
from cpsync.settings import Settings
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from cpsync.students.models import Student, StudentRating, StudentSettings, StudentSubmission
from cpsync.students.reminders import ReminderService
from cpsync.students.sync import StudentSyncService
from cpsync.students.tasks import student_jobs
from tests.net import free_port
from tests.recordings import MutableClock
from tests.replay import ReplayServer, Reply
from tests.smtp_receiver import Inbox, smtp_receiver

from .conftest import OWN, recording
from .support import add_coach, add_student, no_sleep


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_receiver() as receiver:
        yield receiver


def serve(server: ReplayServer, target: str, name: str) -> None:
    server.routes[("GET", target)] = [Reply.file(recording(name))]


@pytest.fixture
def recorded(replay: ReplayServer) -> ReplayServer:
    serve(
        replay,
        "/api/user.info?checkHistoricHandles=true&handles=Sehnsucht",
        "user-info-Sehnsucht-protocol-relative-avatar-2019-izaron.json",
    )
    serve(
        replay,
        "/api/user.status?count=1000&from=1&handle=Sehnsucht",
        "user-status-Sehnsucht-team-submissions-2019-izaron.json",
    )
    serve(
        replay,
        "/api/user.rating?handle=Sehnsucht",
        "user-rating-Sehnsucht-119-changes-2019-izaron.json",
    )
    handmade = OWN / "problemset-problems-handmade.json"
    replay.routes[("GET", "/api/problemset.problems")] = [Reply.file(handmade)]
    return replay


async def test_sync_over_recorded_answers_then_email_through_smtp(
    database, recorded: ReplayServer, settings: Settings, smtp
) -> None:
    inbox, port = smtp
    coach = await add_coach(database)
    created = datetime(2019, 1, 1, tzinfo=UTC)
    student_id = await add_student(database, coach, "Sehnsucht", created_at=created)
    # Years after the recording: long inactive.
    now = datetime(2019, 12, 1, tzinfo=UTC)
    mailer = SmtpMailer(SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?from=coach@cpsync.test"))
    async with HttpClient(settings) as http:
        client = CodeforcesClient(
            http,
            CodeforcesClientConfig(base_url=recorded.base_url),
            sleep=no_sleep,
        )
        service = StudentSyncService(
            database,
            client,
            MemoryCache(),
            MemoryLocks(),
            MutableClock(now),
            after_sync=ReminderService(database, mailer, MutableClock(now)),
            sleep=no_sleep,
        )
        report = await service.sync(coach_id=coach)
    assert report.state == "done", report
    async with database.session() as session:
        student = await session.get(Student, student_id)
        assert student is not None
        assert student.handle == "Sehnsucht"
        assert student.reminders_sent == 1
        subs = await session.scalar(
            select(func.count())
            .select_from(StudentSubmission)
            .where(StudentSubmission.student_id == student_id)
        )
        ratings = await session.scalar(
            select(func.count())
            .select_from(StudentRating)
            .where(StudentRating.student_id == student_id)
        )
    assert subs == 10  # team submissions belong to the member too
    assert ratings == 119
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "sehnsucht@example.com"
    assert message["From"] == "coach@cpsync.test"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "Sehnsucht" in parts["text/plain"].get_payload(decode=True).decode()
    assert "<strong>Sehnsucht</strong>" in parts["text/html"].get_payload(decode=True).decode()


async def test_unreachable_smtp_is_a_delivery_error() -> None:
    mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=free_port(), timeout_seconds=2))
    from cpsync.notify.email import Email

    with pytest.raises(EmailDeliveryError):
        await mailer.send(Email("a@example.com", "s", "t", "<p>h</p>"))


async def test_scheduler_jobs_follow_the_stored_cron(database) -> None:
    coach = await add_coach(database)
    await add_student(database, coach, "someone", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    jobs = await student_jobs(database, lambda coach_id: no_sleep)  # type: ignore[arg-type,return-value]
    assert [(job.name, job.cron) for job in jobs] == [(f"students.sync:{coach}", "0 3 * * *")]
    async with database.session() as session, session.begin():
        session.add(
            StudentSettings(
                coach_id=coach,
                sync_cron="30 18 * * *",
                timezone="Asia/Kolkata",
                inactive_days=7,
                accepted_only=False,
                repeat_every_days=None,
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    (job,) = await student_jobs(database, lambda coach_id: no_sleep)  # type: ignore[arg-type,return-value]
    now = datetime(2026, 11, 22, 13, 5, tzinfo=UTC)  # 18:35 in Kolkata
    assert job.latest_occurrence(now) == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    assert job.latest_occurrence(now - timedelta(minutes=10)) == datetime(
        2026, 11, 21, 13, 0, tzinfo=UTC
    )
