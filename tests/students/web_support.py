"""The web app with the student router included, over a simulated Codeforces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from cpsync.app import create_app
from cpsync.http import HttpClient
from cpsync.pacing import Pacer
from cpsync.settings import Settings
from cpsync.students.routes import build_router
from tests.recordings import MutableClock

from .simulated_codeforces import SimulatedCodeforces
from .support import SIM_BASE, CountingThrottle, RecordingMailer, paced


@asynccontextmanager
async def student_app(
    settings: Settings,
    sim: SimulatedCodeforces,
    clock: MutableClock,
    mailer: RecordingMailer | None = None,
    throttle: Pacer | None = None,
) -> AsyncIterator[FastAPI]:
    settings = settings.model_copy(
        update={"refresh_interval_minutes": 0, "codeforces_base_url": SIM_BASE}
    )
    app = create_app(settings, clock=clock)
    if not any(getattr(r, "path", "") == "/students" for r in app.routes):
        app.include_router(build_router(settings))
    async with app.router.lifespan_context(app):
        # The process's resources talk to the real Codeforces: point them at the simulator.
        resources = app.state.resources
        pacer = throttle or CountingThrottle()
        pacers = paced(SIM_BASE, pacer)
        async with HttpClient(settings, transport=sim.transport(), pacers=pacers) as http:
            resources.http = http
            resources.codeforces_throttle = pacer
            resources.mailer = mailer or RecordingMailer()
            try:
                yield app
            finally:
                await resources.broker.wait_idle()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The student pages on SQLite only; the sync tests cover PostgreSQL too."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"
