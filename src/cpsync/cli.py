"""The `cpsync` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from cpsync.contests.ics import PLATFORM_LABELS, build_calendar
from cpsync.contests.merge import ChangeKind
from cpsync.contests.models import Contest, PlatformHealth
from cpsync.contests.service import RefreshReport
from cpsync.db import open_database
from cpsync.errors import CpsyncError
from cpsync.platforms.registry import PLATFORMS
from cpsync.runtime import Runtime, open_services

app = typer.Typer(
    help="Upcoming programming contests from seven platforms, kept current.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _console(*, to_stderr: bool = False) -> Console:
    """A console for the current streams; piped output gets room instead of truncation."""
    stream = sys.stderr if to_stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, stderr=to_stderr, highlight=False, width=width)


PlatformOption = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help=f"Limit to a platform: {', '.join(PLATFORMS)}."),
]


@app.callback()
def _main(ctx: typer.Context) -> None:
    # Tests hand in a Runtime with a frozen clock; otherwise build one from the environment.
    if not isinstance(ctx.obj, Runtime):
        try:
            ctx.obj = Runtime()
        except ValueError as exc:
            _fail(f"invalid configuration: {exc}".splitlines()[0])


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the database schema."""
    runtime: Runtime = ctx.obj

    async def run() -> None:
        db = await open_database(runtime.settings)
        await db.dispose()

    _run(run())
    _console().print(f"schema up to date: {_redacted(runtime.settings.resolved_database_url())}")


@app.command()
def fetch(ctx: typer.Context, platform: PlatformOption = None) -> None:
    """Fetch upcoming contests now and show what changed per platform."""
    runtime: Runtime = ctx.obj
    names = _platforms(platform)
    reports = _run(_fetch_with_progress(runtime, names))
    _print_reports(reports)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


async def _fetch_with_progress(runtime: Runtime, names: list[str]) -> list[RefreshReport]:
    console = _console(to_stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task("fetching " + ", ".join(names), total=len(names))

    def on_report(report: RefreshReport) -> None:
        progress.update(task, advance=1, description=f"{report.platform} done")

    async with open_services(runtime) as services:
        with progress:
            return await services.contests.refresh(names, on_report)


@app.command()
def contests(
    ctx: typer.Context,
    platform: PlatformOption = None,
    within: Annotated[
        float | None, typer.Option(help="Only contests starting within this many days.")
    ] = None,
    include_cancelled: Annotated[bool, typer.Option("--include-cancelled")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch first, even if fresh.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    as_ics: Annotated[bool, typer.Option("--ics", help="Print an iCalendar file.")] = False,
) -> None:
    """List contests that have not ended, soonest first."""
    runtime: Runtime = ctx.obj
    names = _platforms(platform)
    if within is not None and within < 0:
        _fail("--within must be zero or more days")
    if as_json and as_ics:
        _fail("choose one of --json and --ics")
    window = timedelta(days=within) if within is not None else None
    rows = _run(_load_contests(runtime, names, window, include_cancelled, refresh))
    if as_json:
        sys.stdout.write(json.dumps([_as_json(c) for c in rows], ensure_ascii=False, indent=2))
        sys.stdout.write("\n")
    elif as_ics:
        sys.stdout.buffer.write(build_calendar(rows, name=runtime.settings.calendar_name))
    else:
        _print_contests(rows, runtime.settings.display_zone())


async def _load_contests(
    runtime: Runtime,
    names: list[str],
    window: timedelta | None,
    include_cancelled: bool,
    refresh: bool,
) -> list[Contest]:
    async with open_services(runtime) as services:
        stale = names if refresh else await services.contests.stale_platforms(names)
        if stale:
            for report in await services.contests.refresh(stale):
                if report.error:
                    _console(to_stderr=True).print(f"[yellow]warning:[/] {escape(report.error)}")
        return await services.contests.upcoming(names, window, include_cancelled)


@app.command()
def platforms(ctx: typer.Context) -> None:
    """Show each platform's fetch health."""
    runtime: Runtime = ctx.obj

    async def load() -> dict[str, PlatformHealth]:
        async with open_services(runtime) as services:
            return await services.contests.health()

    health = _run(load())
    zone = runtime.settings.display_zone()
    table = Table(
        "platform", "state", "last success", "last failure", "contests", "skipped", "last error"
    )
    for name in PLATFORMS:
        row = health.get(name)
        if row is None:
            table.add_row(name, "[dim]never fetched[/]", "", "", "", "", "")
            continue
        table.add_row(
            name,
            "[green]ok[/]"
            if row.consecutive_failures == 0
            else f"[red]failing x{row.consecutive_failures}[/]",
            _when(row.last_success_at, zone),
            _when(row.last_failure_at, zone),
            str(row.contests_seen),
            str(row.items_skipped),
            escape(row.last_error or ""),
        )
    _console().print(table)


def _platforms(requested: Sequence[str] | None) -> list[str]:
    if not requested:
        return list(PLATFORMS)
    unknown = [name for name in requested if name not in PLATFORMS]
    if unknown:
        _fail(f"unknown platform {unknown[0]!r}; choose from {', '.join(PLATFORMS)}")
    return list(dict.fromkeys(requested))


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return asyncio.run(coro)
    except CpsyncError as exc:
        _fail(exc.message)
    except (SQLAlchemyError, OSError) as exc:
        _fail(f"database unavailable: {str(exc).splitlines()[0]}")


def _fail(message: str) -> NoReturn:
    _console(to_stderr=True).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _print_reports(reports: list[RefreshReport]) -> None:
    columns = ("added", "rescheduled", "cancelled", "unchanged", "skipped", "error")
    table = Table("platform", *columns)
    for report in sorted(reports, key=lambda r: list(PLATFORMS).index(r.platform)):
        changed = report.count(ChangeKind.RESCHEDULED) + report.count(ChangeKind.RENAMED)
        table.add_row(
            report.platform,
            str(report.count(ChangeKind.ADDED) + report.count(ChangeKind.RESTORED)),
            str(changed),
            str(report.count(ChangeKind.CANCELLED)),
            str(report.unchanged),
            str(report.skipped),
            f"[red]{escape(report.error)}[/]" if report.error else "",
        )
    _console().print(table)


def _print_contests(rows: list[Contest], zone: tzinfo) -> None:
    if not rows:
        _console().print(
            "No upcoming contests stored. Run `cpsync fetch` or check `cpsync platforms`."
        )
        return
    table = Table("platform", "name", "start", "duration", "link")
    for contest in rows:
        # Names and errors come from upstream: never let them be read as Rich markup.
        name = escape(contest.name)
        if contest.status != "scheduled":
            name = f"[strike]{name}[/] (cancelled)"
        table.add_row(
            PLATFORM_LABELS[contest.platform],
            name,
            contest.start.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z"),
            _duration(contest.duration_seconds),
            contest.url,
        )
    _console().print(table)


def _as_json(contest: Contest) -> dict[str, Any]:
    return {
        "platform": contest.platform,
        "key": contest.key,
        "name": contest.name,
        "url": contest.url,
        "start": _iso_z(contest.start),
        "end": _iso_z(contest.end),
        "duration_seconds": contest.duration_seconds,
        "status": contest.status,
    }


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
    return f"{days}d {text}" if days else text


def _when(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
