"""The `cpsync` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from cpsync.clock import Clock, utc_now
from cpsync.contests.ics import PLATFORM_LABELS, build_calendar
from cpsync.contests.merge import ChangeKind
from cpsync.contests.models import Contest, PlatformHealth
from cpsync.contests.service import RefreshReport
from cpsync.contests.tasks import contest_service
from cpsync.errors import CpsyncError
from cpsync.platforms.registry import PLATFORMS
from cpsync.resources import open_resources
from cpsync.settings import Settings
from cpsync.students.cli import students_app


@dataclass(frozen=True)
class Runtime:
    """What every command starts from: the settings (read once) and the clock. Each
    command opens the process's resources once, with `open_resources`."""

    settings: Settings = field(default_factory=Settings)
    clock: Clock = utc_now


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
        except ValidationError as exc:
            # Name the setting and say why, not pydantic's "1 validation error for Settings".
            problem = exc.errors()[0]
            name = f"CPSYNC_{str(problem['loc'][0]).upper()}" if problem["loc"] else "settings"
            reason = str(problem["msg"]).removeprefix("Value error, ")
            _fail(f"invalid configuration: {name}: {reason}")
        except ValueError as exc:
            _fail(f"invalid configuration: {exc}".splitlines()[0])


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the database schema."""
    runtime: Runtime = ctx.obj

    async def run() -> None:
        async with open_resources(runtime.settings):
            pass  # opening the database migrates it

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

    async with open_resources(runtime.settings, clock=runtime.clock) as resources:
        with progress:
            return await contest_service(resources).refresh(names, on_report)


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
    async with open_resources(runtime.settings, clock=runtime.clock) as resources:
        contests = contest_service(resources)
        stale = names if refresh else await contests.stale_platforms(names)
        if stale:
            for report in await contests.refresh(stale):
                if report.error:
                    _console(to_stderr=True).print(f"[yellow]warning:[/] {escape(report.error)}")
        return await contests.upcoming(names, window, include_cancelled)


@app.command()
def platforms(ctx: typer.Context) -> None:
    """Show each platform's fetch health."""
    runtime: Runtime = ctx.obj

    async def load() -> dict[str, PlatformHealth]:
        async with open_resources(runtime.settings, clock=runtime.clock) as resources:
            return await contest_service(resources).health()

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
    # People write the names as the sites do: "Codeforces", "AtCoder".
    names = [name.strip().lower() for name in requested]
    unknown = [given for given, name in zip(requested, names, strict=True) if name not in PLATFORMS]
    if unknown:
        _fail(f"unknown platform {unknown[0]!r}; choose from {', '.join(PLATFORMS)}")
    return list(dict.fromkeys(names))


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


# Web app, accounts and keys.

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the encryption keys for secrets at rest.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(students_app, name="students")
app.add_typer(keys_app, name="keys")

BOOTSTRAP_HINT = (
    "No user accounts yet. Create the first admin with:\n"
    "  cpsync users create --admin --email you@example.com"
)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web app and refresh contests on a schedule."""
    import uvicorn

    from cpsync.app import create_app
    from cpsync.web.server import ConnectionGuard, guarded_protocol

    runtime: Runtime = ctx.obj
    settings = runtime.settings
    if "public_url" not in settings.model_fields_set:
        # Links (feed URLs, the Google redirect) point at where this process listens.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        settings = settings.model_copy(update={"public_url": f"http://{local}:{port}"})
    try:
        web = create_app(settings, clock=runtime.clock)
    except CpsyncError as exc:
        _fail(exc.message)
    message = f"serving on http://{host}:{port} (public URL {settings.public_url})"
    _console(to_stderr=True).print(message)
    uvicorn.run(
        web,
        host=host,
        port=port,
        proxy_headers=False,  # the app installs ProxyHeadersMiddleware for CPSYNC_TRUSTED_PROXIES
        server_header=False,
        # Idle and trickling connections must not starve everyone else (cpsync.web.server).
        http=guarded_protocol(ConnectionGuard.from_settings(settings)),
        limit_concurrency=settings.server_limit_concurrency,
        timeout_keep_alive=settings.server_keep_alive_seconds,
        timeout_graceful_shutdown=10,
        # Request line and headers arrive together; cpsync's middleware answers 414 / 431.
        h11_max_incomplete_event_size=settings.max_request_line_bytes + settings.max_header_bytes,
        log_level="info",
    )


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(prompt=True, help="Sign-in email.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input (no prompt).",
        ),
    ] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    role: Annotated[str | None, typer.Option(help="admin, coach or member.")] = None,
) -> None:
    """Create a local account (the first one with --admin).

    The password is asked for without echo, or read from standard input: never an
    argument, which other users of the machine see in the process list and shell history.
    """
    from cpsync.accounts.models import Role
    from cpsync.accounts.schemas import check_password, normalise_email

    password = _password_from_stdin() if password_stdin else _prompted_password()
    try:
        address = normalise_email(email)
        check_password(password)
        chosen = Role(role) if role else (Role.ADMIN if admin else Role.MEMBER)
    except ValueError as exc:
        _fail(str(exc).splitlines()[0])
    if admin and role and chosen != Role.ADMIN:
        _fail("--admin and --role disagree")
    user_id = _run(_create_user(ctx.obj, address, password, chosen))
    _console().print(f"created {chosen} {address} (id {user_id})")


def _password_from_stdin() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        _fail("--password-stdin: no password on standard input")
    return line


def _prompted_password() -> str:
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


async def _create_user(runtime: Runtime, email: str, password: str, role: Any) -> int:
    from cpsync.accounts.service import AccountService
    from cpsync.accounts.sessions import SessionPolicy

    async with open_resources(runtime.settings, clock=runtime.clock) as resources:
        async with resources.db.session() as session, session.begin():
            policy = SessionPolicy.from_settings(runtime.settings)
            service = AccountService(session, resources.keyring, policy, runtime.clock)
            user = await service.create_user(email, password, role)
            return user.id


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List user accounts."""
    runtime: Runtime = ctx.obj

    async def load() -> list[tuple[int, str, str, datetime]]:
        from cpsync.accounts.repository import AccountRepository

        async with open_resources(runtime.settings) as resources:
            async with resources.db.session() as session:
                users = await AccountRepository(session).users()
                return [(u.id, u.email, u.role, u.created_at) for u in users]

    rows = _run(load())
    if not rows:
        _console().print(BOOTSTRAP_HINT)
        return
    table = Table("id", "email", "role", "created")
    zone = runtime.settings.display_zone()
    for user_id, email, role, created in rows:
        table.add_row(str(user_id), email, role, _when(created, zone))
    _console().print(table)


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[str | None, typer.Option("--id", help="Key id; random if omitted.")] = None,
) -> None:
    """Print a new `id:base64key` to put first in CPSYNC_ENCRYPTION_KEYS."""
    from cpsync.accounts.crypto import generate_key_spec

    sys.stdout.write(generate_key_spec(key_id) + "\n")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Re-encrypt every stored secret under the newest key in CPSYNC_ENCRYPTION_KEYS."""
    runtime: Runtime = ctx.obj

    async def rotate() -> tuple[int, str]:
        from cpsync.accounts.keys import rotate_columns

        async with open_resources(runtime.settings) as resources:
            keyring = resources.keyring
            async with resources.db.session() as session, session.begin():
                changed = await rotate_columns(session, keyring, encrypted_columns())
                return changed, keyring.newest_id

    changed, newest = _run(rotate())
    _console().print(f"re-encrypted {changed} secret(s) under key {newest!r}")


@app.command()
def worker(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run a task worker on the broker of CPSYNC_BROKER_URL (Redis or RabbitMQ)."""
    import os

    runtime: Runtime = ctx.obj
    if runtime.settings.broker_url.startswith("memory://"):
        _fail("the in-process broker needs no worker: set CPSYNC_BROKER_URL (redis:// or amqp://)")
    # A broker factory: the worker reads its settings when it starts, not at import.
    command = [sys.executable, "-m", "taskiq", "worker", "cpsync.worker:worker_broker"]
    # Acknowledge only after a task ran, so a killed worker's task runs again elsewhere.
    command += ["--ack-type", "when_executed", "--workers", str(workers)]
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter, fixed arguments


@app.command()
def scheduler(ctx: typer.Context) -> None:
    """Run the scheduler: contest refreshes and the daily calendar reconciliation.

    Several may run at once: each occurrence of each job fires exactly once.
    """
    from cpsync.worker import run_scheduler

    runtime: Runtime = ctx.obj
    _console(to_stderr=True).print(f"scheduler on {_redacted(runtime.settings.broker_url)}")
    try:
        _run(run_scheduler(runtime.settings, clock=runtime.clock))
    except KeyboardInterrupt:
        pass


def encrypted_columns() -> list[Any]:
    """Every encrypted column of every domain, for `keys rotate`."""
    from cpsync.accounts.keys import EncryptedColumn
    from cpsync.accounts.service import ACCOUNT_SECRETS
    from cpsync.calendars import service as calendars
    from cpsync.calendars.models import CalendarLink

    return [
        *ACCOUNT_SECRETS,
        EncryptedColumn(CalendarLink, "secret_encrypted", calendars._REFRESH_PURPOSE),
        EncryptedColumn(CalendarLink, "access_token_encrypted", calendars._ACCESS_PURPOSE),
    ]
