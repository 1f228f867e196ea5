"""What the web app holds beside the process's `Resources`: the cookie and template
machinery, built once by the app factory. Resources are reached through it."""

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
from cpsync.db import Database
from cpsync.resources import Resources
from cpsync.settings import Settings
from cpsync.web.flash import FlashMessages


@dataclass(slots=True)
class AppContext:
    resources: Resources
    policy: SessionPolicy
    anon_csrf: AnonymousCsrf
    flash: FlashMessages
    templates: Jinja2Templates

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    @property
    def clock(self) -> Clock:
        return self.resources.clock

    @property
    def db(self) -> Database:
        return self.resources.db

    @property
    def cache(self) -> Cache:
        return self.resources.cache

    @property
    def keyring(self) -> KeyRing:
        return self.resources.keyring

    def accounts(self, session: AsyncSession) -> AccountService:
        return AccountService(session, self.keyring, self.policy, self.clock)
