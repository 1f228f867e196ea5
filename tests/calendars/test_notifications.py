"""Messages owed to users (a revoked calendar) go out by real SMTP, once."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from cpsync.calendars.models import Notification
from cpsync.calendars.notifications import deliver_pending
from cpsync.db import Database
from cpsync.notify.email import DisabledMailer, SmtpConfig, SmtpMailer
from tests.calendars.service_support import NOW, add_user
from tests.smtp_receiver import smtp_receiver


async def owe(db: Database, user_id: int) -> None:
    async with db.session() as session, session.begin():
        session.add(
            Notification(
                user_id=user_id,
                kind="reconnect_needed",
                subject="cpsync: reconnect your calendar",
                body="cpsync can no longer write to your google calendar (invalid_grant).",
                created_at=NOW,
            )
        )


async def sent_at(db: Database) -> list[object]:
    async with db.session() as session:
        return list((await session.scalars(select(Notification.sent_at))).all())


async def test_delivered_exactly_once_even_by_two_workers(database: Database) -> None:
    user_id = await add_user(database, "ada@example.org")
    await owe(database, user_id)
    with smtp_receiver() as (inbox, port):
        mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port))
        counts = await asyncio.gather(
            deliver_pending(database, mailer, lambda: NOW),
            deliver_pending(database, mailer, lambda: NOW),
        )
        assert sorted(counts) == [0, 1]
        assert await deliver_pending(database, mailer, lambda: NOW) == 0
    (message,) = inbox.messages
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "cpsync: reconnect your calendar"
    assert await sent_at(database) == [NOW]


async def test_without_smtp_the_message_stays_owed(database: Database) -> None:
    user_id = await add_user(database, "bob@example.org")
    await owe(database, user_id)
    assert await deliver_pending(database, DisabledMailer(), lambda: NOW) == 0
    assert await sent_at(database) == [None]
    with smtp_receiver() as (inbox, port):
        mailer = SmtpMailer(SmtpConfig(host="127.0.0.1", port=port))
        assert await deliver_pending(database, mailer, lambda: NOW) == 1
    assert len(inbox.messages) == 1
