"""Inactivity reminders after a sync: decide, claim, send, log.

Exactly once: the decision is turned into a claim, a `student_reminders` row whose
unique key is (student, streak start, slot). Two overlapping syncs that both decide to
remind insert the same key; the database lets one through and the other sees an
IntegrityError and stops. Only the claim's owner sends.

A claim is a lease: `claimed_at` is when its holder took it. Each reminder is claimed
and sent before the next is claimed, so a sender killed mid-run strands at most the one
it was sending; that claim stays `pending` and can be taken again only once its lease
(`claim_lease`, on the injected clock) has run out, or once a sync run of the same
scope adopts the dead run (students/sync.py): holding the scope's lock, it knows the
dead run's claims have no live holder and releases them (marks them `failed`), so it
sends them at once. Taking a claim renews the lease in the same compare-and-set that
counts the attempt, so no second run takes it meanwhile; a sent reminder is marked
`sent` with its attempt in one transaction and never taken again.

What SMTP leaves open: the receiver takes the message when it replies 250 (RFC 5321),
and the sender records `sent` after hearing it. A sender killed between the two has
delivered but not recorded it, so the reminder is sent again: delivery is at least
once, exactly once in every other case (a sender killed before the 250 has not
delivered, and its claim is retried).

Every delivery attempt is logged in `student_reminder_attempts`. A failed delivery
leaves its claim `failed`; later runs retry it (up to `max_attempts`) and only a
delivered reminder counts in `students.reminders_sent`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.cache import MemoryCache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.notify.email import Email, EmailDeliveryError, Mailer, render_email
from cpsync.students.dashboard import DashboardService, student_zone
from cpsync.students.inactivity import Activity, ReminderPolicy, reminder_decision
from cpsync.students.models import Student, StudentReminder, StudentSettings
from cpsync.students.repository import StudentRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReminderConfig:
    max_attempts: int = 5
    # A claim still `pending` this long after it was taken belongs to a crashed sender.
    # Far longer than one SMTP delivery may take (the mailer's timeouts), so a live
    # sender never loses its claim mid-send.
    claim_lease: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ReminderCounts:
    """What one check came to: reminders delivered, deliveries that failed (retried by a
    later run), and reminders another overlapping sync claimed first (and sends itself)."""

    sent: int = 0
    failed: int = 0
    claimed_elsewhere: int = 0


def policy_of(settings: StudentSettings | None) -> ReminderPolicy:
    if settings is None:
        return ReminderPolicy()
    return ReminderPolicy(
        inactive_days=settings.inactive_days,
        accepted_only=settings.accepted_only,
        repeat_every_days=settings.repeat_every_days,
    )


class ReminderService:
    def __init__(
        self, db: Database, mailer: Mailer, clock: Clock, config: ReminderConfig | None = None
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._clock = clock
        self._config = config or ReminderConfig()

    async def __call__(self, student_ids: Sequence[int]) -> ReminderCounts:
        return await self.remind(student_ids)

    async def remind(self, student_ids: Sequence[int]) -> ReminderCounts:
        """Check these students, send what is due, retry earlier failures."""
        handled: list[int] = []
        delivered: list[bool] = []
        claimed_elsewhere = 0
        for student_id in student_ids:
            try:
                claim = await self._claim(student_id)
            except IntegrityError:
                log.info("students.reminder.claimed_elsewhere student=%s", student_id)
                claimed_elsewhere += 1
                continue
            if claim is not None:
                handled.append(claim)
                delivered.append(await self._deliver(claim))
        for reminder_id, attempts in await self._retriable(student_ids, exclude=handled):
            if await self._take(reminder_id, attempts):
                delivered.append(await self._deliver(reminder_id))
        return ReminderCounts(
            sent=delivered.count(True),
            failed=delivered.count(False),
            claimed_elsewhere=claimed_elsewhere,
        )

    async def _claim(self, student_id: int) -> int | None:
        """The new claim's id, or None when nothing is due.

        Raises IntegrityError when another sync claimed the same reminder first.
        """
        now = self._clock()
        async with self._db.session() as session, session.begin():
            repository = StudentRepository(session)
            student = await repository.get(student_id)
            if student is None or not student.reminders_enabled or not student.email:
                return None
            policy = policy_of(await repository.settings_for(student.coach_id))
            activity = await repository.last_activity(student_id)
            activities = [
                Activity(at, accepted)
                for at, accepted in ((activity.any_at, False), (activity.accepted_at, True))
                if at is not None
            ]
            latest = await repository.latest_reminder(student_id)
            decision = reminder_decision(
                activities,
                now=now,
                policy=policy,
                last_reminder_at=latest.claimed_at if latest else None,
                tracked_since=student.created_at,
            )
            if not decision.send or decision.inactive_since is None:
                return None
            # The slot follows from the claim the decision was made on, never from a
            # second read: two runs deciding on the same state pick the same slot, and
            # the unique constraint lets only one of them through.
            same_streak = latest is not None and latest.streak_start == decision.inactive_since
            reminder = StudentReminder(
                student_id=student_id,
                streak_start=decision.inactive_since,
                slot=latest.slot + 1 if latest is not None and same_streak else 0,
                kind="first" if decision.reason.startswith("first") else "repeat",
                state="pending",
                attempts=1,  # the claim is the right to the first attempt
                claimed_at=now,
            )
            return await repository.claim_reminder(reminder)

    async def _retriable(
        self, student_ids: Sequence[int], exclude: Sequence[int]
    ) -> list[tuple[int, int]]:
        """Earlier failures and claims whose lease ran out (their sender died), with the
        attempt count seen; `_take` decides which run gets each."""
        lease_start_before = self._clock() - self._config.claim_lease
        async with self._db.session() as session:
            unsent = await StudentRepository(session).unsent_reminders(
                student_ids, self._config.max_attempts
            )
        return [
            (row.id, row.attempts)
            for row in unsent
            if row.id not in exclude
            and (row.state == "failed" or row.claimed_at.astimezone(UTC) < lease_start_before)
        ]

    async def _take(self, reminder_id: int, seen_attempts: int) -> bool:
        """Claim it with a fresh lease; False when another run took it first."""
        now = self._clock()
        async with self._db.session() as session, session.begin():
            return await StudentRepository(session).take_reminder(
                reminder_id, seen_attempts, now, now - self._config.claim_lease
            )

    async def _deliver(self, reminder_id: int) -> bool:
        async with self._db.session() as session:
            repository = StudentRepository(session)
            reminder = await repository.reminder(reminder_id)
            student = await repository.get(reminder.student_id) if reminder else None
            if reminder is None or student is None:
                return False
            email = await self._render(session, student)
        error: str | None = None
        try:
            await self._mailer.send(email)
        except EmailDeliveryError as exc:
            error = exc.message[:500]
            log.warning("students.reminder.failed student=%s error=%s", student.id, error)
        async with self._db.session() as session, session.begin():
            repository = StudentRepository(session)
            reminder = await repository.reminder(reminder_id)
            if reminder is not None:
                await repository.record_attempt(reminder, self._clock(), error=error)
        return error is None

    async def _render(self, session: AsyncSession, student: Student) -> Email:
        # A throwaway cache: the email's figures are computed fresh from stored rows.
        dashboard = DashboardService(session, MemoryCache(), self._clock)
        recent = await dashboard.problems(student, 30)
        overall = await dashboard.problems(student, None)
        repository = StudentRepository(session)
        activity = await repository.last_activity(student.id)
        policy = policy_of(await repository.settings_for(student.coach_id))
        last = activity.any_at
        return render_email(
            "inactivity_reminder",
            to=student.email,
            subject=(
                f"Codeforces: no submission from {student.handle} in {policy.inactive_days} days"
            ),
            context={
                "name": student.name,
                "handle": student.handle,
                "days": policy.inactive_days,
                "last_activity": last.astimezone(student_zone(student)).date().isoformat()
                if last
                else None,
                "rating": student.rating,
                "max_rating": student.max_rating,
                "solved_30": recent["solved"],
                "solved_all": overall["solved"],
            },
        )
