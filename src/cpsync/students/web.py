"""What the web app needs for student tracking, opened inside the app's lifespan.

`install_students(app, settings)` is the one call the app factory makes: it adds the
pages, the API and (with a cron secret) `POST /cron/sync`, and wraps the lifespan so the
students runtime is built on the app context and closed before it. With
`run_scheduler` (the embedded `cpsync serve`) the coaches' stored sync schedules fire in
this process; their jobs are named like the scheduler process's, so with shared locks
one occurrence fires once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from cpsync.settings import Settings
from cpsync.students.routes import build_router
from cpsync.students.runtime import StudentsRuntime

SCHEDULE_TICK_SECONDS = 30.0


def install_students(app: FastAPI, settings: Settings, *, run_scheduler: bool = False) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as state:
            context = application.state.cpsync
            runtime = StudentsRuntime(
                settings, context.db, context.http, context.cache, context.clock
            )
            application.state.students = runtime
            if run_scheduler:
                runtime.start_scheduler(SCHEDULE_TICK_SECONDS)
            try:
                yield state
            finally:
                await runtime.aclose()

    app.router.lifespan_context = lifespan
    app.include_router(build_router(settings))
