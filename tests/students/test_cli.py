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


async def test_list_names_each_students_coach_and_filters_by_email(
    database, settings: Settings
) -> None:
    added = datetime(2026, 1, 1, tzinfo=UTC)
    one = await add_coach(database, "one@example.com")
    two = await add_coach(database, "two@example.com")
    await add_student(database, one, "first_pupil", created_at=added)
    await add_student(database, two, "second_pupil", created_at=added)
    obj = CliRuntime(settings)
    app = typer.Typer()
    app.add_typer(students_app, name="students")
    runner = CliRunner()

    def lines(*args: str) -> list[str]:
        result = runner.invoke(app, ["students", "list", *args], obj=obj)
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines() if "pupil" in line]

    everyone = await asyncio.to_thread(lines)
    assert len(everyone) == 2
    assert any("one@example.com" in line and "first_pupil" in line for line in everyone)
    assert any("two@example.com" in line and "second_pupil" in line for line in everyone)
    only_two = await asyncio.to_thread(lines, "--coach", "TWO@example.com")
    assert [("second_pupil" in line) for line in only_two] == [True]
    by_id = await asyncio.to_thread(lines, "--coach", str(one))
    assert [("first_pupil" in line) for line in by_id] == [True]

    unknown = await asyncio.to_thread(
        runner.invoke, app, ["students", "list", "--coach", "nobody@example.com"], obj=obj
    )
    assert unknown.exit_code == 1
    assert "no user with email nobody@example.com" in unknown.output
