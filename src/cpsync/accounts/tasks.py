"""Accounts' scheduled housekeeping: expired sessions and emailed tokens are pruned."""

from __future__ import annotations

from datetime import timedelta

from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.cron import ScheduledJob
from cpsync.resources import Resources


def scheduled_jobs(resources: Resources) -> list[ScheduledJob]:
    policy = SessionPolicy.from_settings(resources.settings)

    async def prune() -> None:
        async with resources.db.session() as session, session.begin():
            accounts = AccountService(session, resources.keyring, policy, resources.clock)
            await accounts.prune_sessions()

    name = f"{resources.settings.queue_name}:sessions.prune"
    return [ScheduledJob(name, prune, every=timedelta(minutes=30))]
