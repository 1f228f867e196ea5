"""`cpsync students sync` and `list` through the Typer sub-app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import typer
from typer.testing import CliRunner

from cpsync.settings import Settings
from cpsync.students.cli import students_app
from tests.replay import ReplayServer, Reply

from .support import add_coach, add_student

NOT_FOUND = b'{"status":"FAILED","comment":"handles: User with handle Nobody_here not found"}'


@dataclass
class CliRuntime:
    settings: Settings


async def test_sync_and_list_commands(database, settings: Settings, replay: ReplayServer) -> None:
    coach = await add_coach(database)
    await add_student(database, coach, "Nobody_here", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    # An unreadable catalogue is logged and skipped; the sync goes on.
    replay.routes[("GET", "/api/problemset.problems")] = [Reply(body=b"{}")]
    target = "/api/user.info?checkHistoricHandles=true&handles=Nobody_here"
    replay.routes[("GET", target)] = [Reply(status=400, body=NOT_FOUND)]
    obj = CliRuntime(settings.model_copy(update={"codeforces_interval_seconds": 0.001}))
    app = typer.Typer()
    app.add_typer(students_app, name="students")
    runner = CliRunner()
    # The command runs its own event loop: call it from a thread.
    synced = await asyncio.to_thread(
        runner.invoke, app, ["students", "sync", "--coach", str(coach)], obj=obj
    )
    assert synced.exit_code == 0, synced.output
    assert "not found: 1" in synced.output
    listed = await asyncio.to_thread(runner.invoke, app, ["students", "list"], obj=obj)
    assert listed.exit_code == 0, listed.output
    assert "Nobody_here" in listed.output
    assert "Codeforces has no user" in listed.output
