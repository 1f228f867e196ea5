"""What the web app holds beside the process's `Resources`: the flash-message cookies and
the templates, built once by the app factory. Resources are reached through it; what a
domain needs per app (the accounts' session policy, say) it keeps in its own deps."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates

from cpsync.cache import Cache
from cpsync.clock import Clock
from cpsync.db import Database
from cpsync.resources import Resources
from cpsync.settings import Settings
from cpsync.web.flash import FlashMessages


@dataclass(slots=True)
class AppContext:
    resources: Resources
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
