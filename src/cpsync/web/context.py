"""Everything the app holds for its lifetime, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.crypto import KeyRing
from cpsync.accounts.csrf import AnonymousCsrf
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.contests.service import ContestService
from cpsync.db import Database
from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.web.flash import FlashMessages
from cpsync.web.scheduler import ManualRefresh


@dataclass(slots=True)
class AppContext:
    settings: Settings
    clock: Clock
    db: Database
    http: HttpClient
    cache: Cache
    keyring: KeyRing
    policy: SessionPolicy
    anon_csrf: AnonymousCsrf
    flash: FlashMessages
    templates: Jinja2Templates
    contests: ContestService
    scheduler: ManualRefresh

    def accounts(self, session: AsyncSession) -> AccountService:
        return AccountService(session, self.keyring, self.policy, self.clock)
