"""The web app with the student router included, over a simulated Codeforces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.routes import build_router
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.throttle import Throttle
from cpsync.app import create_app
from tests.recordings import MutableClock

from .simulated_codeforces import SimulatedCodeforces
from .support import SIM_BASE, CountingThrottle, RecordingMailer


@asynccontextmanager
async def student_app(
    settings: Settings,
    sim: SimulatedCodeforces,
    clock: MutableClock,
    mailer: RecordingMailer | None = None,
    throttle: Throttle | None = None,
) -> AsyncIterator[FastAPI]:
    settings = settings.model_copy(
        update={"refresh_interval_minutes": 0, "codeforces_base_url": SIM_BASE}
    )
    app = create_app(settings, clock=clock)
    if not any(getattr(r, "path", "") == "/students" for r in app.routes):
        app.include_router(build_router(settings))
    async with app.router.lifespan_context(app):
        # The app's own runtime talks to the real Codeforces: swap in one over the simulator.
        await app.state.students.aclose()
        context = app.state.cpsync
        async with HttpClient(settings, transport=sim.transport()) as http:
            runtime = StudentsRuntime(
                settings,
                context.db,
                http,
                context.cache,
                clock,
                throttle=throttle or CountingThrottle(),
                mailer=mailer or RecordingMailer(),
            )
            app.state.students = runtime
            try:
                yield app
            finally:
                await runtime.wait_idle()
                await runtime.aclose()
