"""`cpsync students ...`: sync with a progress bar, list students, show recent runs.

A Typer sub-app, added to the main CLI with `app.add_typer(students_app, name="students")`;
it reads the settings and clock from the main CLI's `Runtime` in the context.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cpsync.cache import open_cache
from cpsync.clock import utc_now
from cpsync.db import open_database
from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.repository import StudentRepository
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.sync_service import SyncReport

students_app = typer.Typer(help="Track students' Codeforces progress.", no_args_is_help=True)


def _settings_and_clock(ctx: typer.Context) -> tuple[Settings, Any]:
    runtime = ctx.obj
    settings = getattr(runtime, "settings", None) or Settings()
    return settings, getattr(runtime, "clock", utc_now)


def _console(*, to_stderr: bool = False) -> Console:
    stream = sys.stderr if to_stderr else sys.stdout
    return Console(
        file=stream, stderr=to_stderr, highlight=False, width=None if stream.isatty() else 200
    )


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@students_app.command("sync")
def sync(
    ctx: typer.Context,
    coach: Annotated[int | None, typer.Option(help="Only this coach's students (user id).")] = None,
    student: Annotated[
        list[int] | None, typer.Option("--student", "-s", help="Only these student ids.")
    ] = None,
) -> None:
    """Sync students from Codeforces now (everyone's by default), with a progress bar."""
    settings, clock = _settings_and_clock(ctx)
    report: SyncReport = _run(_sync(settings, clock, coach, student))
    console = _console()
    counts = asdict(report.counts)
    console.print(f"sync run {report.run_id}: {report.state}")
    for name, value in counts.items():
        if value:
            console.print(f"  {name.replace('_', ' ')}: {value}")
    if report.state == "failed":
        raise typer.Exit(1)


async def _sync(
    settings: Settings, clock: Any, coach: int | None, students: list[int] | None
) -> SyncReport:
    console = _console(to_stderr=True)
    progress = Progress(
        TextColumn("syncing students"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("sync", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    db = await open_database(settings)
    cache = open_cache(settings.cache_url, settings.queue_name)
    try:
        async with HttpClient(settings) as http:
            runtime = StudentsRuntime(settings, db, http, cache, clock)
            try:
                with progress:
                    return await runtime.sync(
                        coach_id=coach, student_ids=students, trigger="cli", progress=on_progress
                    )
            finally:
                await runtime.aclose()
    finally:
        await cache.close()
        await db.dispose()


@students_app.command("list")
def list_students(
    ctx: typer.Context,
    coach: Annotated[int | None, typer.Option(help="Only this coach's students.")] = None,
) -> None:
    """Students with their rating and last sync."""
    settings, _clock = _settings_and_clock(ctx)

    async def load() -> list[Any]:
        db = await open_database(settings)
        try:
            async with db.session() as session:
                page = await StudentRepository(session).page(coach, limit=None)
                return list(page.students)
        finally:
            await db.dispose()

    table = Table("id", "name", "handle", "rating", "max", "last synced", "reminders sent", "error")
    for s in _run(load()):
        synced = s.last_synced_at.strftime("%Y-%m-%d %H:%M") if s.last_synced_at else "never"
        table.add_row(
            str(s.id),
            s.name,
            s.handle,
            str(s.rating or "-"),
            str(s.max_rating or "-"),
            synced,
            str(s.reminders_sent),
            s.last_sync_error or "",
        )
    _console().print(table)
