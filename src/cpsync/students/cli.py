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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cpsync.accounts.repository import AccountRepository
from cpsync.accounts.schemas import normalise_email
from cpsync.clock import utc_now
from cpsync.resources import open_resources
from cpsync.settings import Settings
from cpsync.students.repository import StudentRepository
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.sync import SyncReport

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

    async with open_resources(settings, clock=clock) as resources:
        runtime = StudentsRuntime(resources)
        with progress:
            return await runtime.sync(
                coach_id=coach, student_ids=students, trigger="cli", progress=on_progress
            )


@students_app.command("list")
def list_students(
    ctx: typer.Context,
    coach: Annotated[
        str | None, typer.Option(help="Only this coach's students: their email or user id.")
    ] = None,
) -> None:
    """Students with their coach, rating and last sync."""
    settings, _clock = _settings_and_clock(ctx)
    try:
        students, coaches = _run(_load_roster(settings, coach))
    except LookupError as error:
        _console(to_stderr=True).print(f"error: {escape(str(error))}")
        raise typer.Exit(1) from None
    table = Table(
        "id", "coach", "name", "handle", "rating", "max", "last synced", "reminders sent", "error"
    )
    for s in students:
        synced = s.last_synced_at.strftime("%Y-%m-%d %H:%M") if s.last_synced_at else "never"
        table.add_row(
            str(s.id),
            escape(coaches.get(s.coach_id, str(s.coach_id))),
            escape(s.name),
            s.handle,
            str(s.rating or "-"),
            str(s.max_rating or "-"),
            synced,
            str(s.reminders_sent),
            escape(s.last_sync_error or ""),
        )
    _console().print(table)


async def _load_roster(settings: Settings, coach: str | None) -> tuple[list[Any], dict[int, str]]:
    """The students (of one coach when asked) and every coach's email by id."""
    async with open_resources(settings) as resources, resources.db.session() as session:
        accounts = AccountRepository(session)
        emails = {user.id: user.email for user in await accounts.users()}
        coach_id = await _coach_id(accounts, coach) if coach is not None else None
        page = await StudentRepository(session).page(coach_id, limit=None)
        return list(page.students), emails


async def _coach_id(accounts: AccountRepository, coach: str) -> int:
    if coach.isdigit():
        return int(coach)
    try:
        email = normalise_email(coach)
    except ValueError:
        raise LookupError(f"--coach takes a coach's email or user id, not {coach!r}") from None
    user = await accounts.user_by_email(email)
    if user is None:
        raise LookupError(f"no user with email {email}")
    return user.id
