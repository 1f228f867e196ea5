"""Deliver the messages calendar sync owes users (e.g. "reconnect your calendar").

Each notification is claimed (its `sent_at` set where it was empty) before it is sent, so
two workers never both send it; a failed delivery gives the claim back and is tried again
after the next sync. Without an SMTP server the notifications stay recorded and unsent.
"""

from __future__ import annotations

import logging
from html import escape

from sqlalchemy import select, update

from cpsync.accounts.models import User
from cpsync.calendars.models import Notification
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.notify.email import Email, EmailDeliveryError, Mailer

log = logging.getLogger(__name__)


async def deliver_pending(db: Database, mailer: Mailer, clock: Clock, limit: int = 50) -> int:
    """Send unsent notifications; returns how many were delivered."""
    async with db.session() as session:
        pending = (
            await session.execute(
                select(Notification.id, Notification.subject, Notification.body, User.email)
                .join(User, User.id == Notification.user_id)
                .where(Notification.sent_at.is_(None))
                .order_by(Notification.id)
                .limit(limit)
            )
        ).all()
    delivered = 0
    for notification_id, subject, body, address in pending:
        if not await _claim(db, notification_id, clock):
            continue  # another worker has it
        email = Email(to=address, subject=subject, text=body, html=f"<p>{escape(body)}</p>")
        try:
            await mailer.send(email)
        except EmailDeliveryError as exc:
            log.warning("calendars.notify.failed id=%s error=%s", notification_id, exc)
            await _release(db, notification_id)
            continue
        delivered += 1
    return delivered


async def _claim(db: Database, notification_id: int, clock: Clock) -> bool:
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.sent_at.is_(None))
            .values(sent_at=clock())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def _release(db: Database, notification_id: int) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(Notification).where(Notification.id == notification_id).values(sent_at=None)
        )
