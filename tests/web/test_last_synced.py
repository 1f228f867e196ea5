"""The students table's "last synced" moves whenever a sync ran; its messages show once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI

from cpsync.accounts.models import Role
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.students.simulated_codeforces import (
    IdSource,
    SimulatedCodeforces,
    catalogue,
    generate_user,
    unix,
)
from tests.students.web_support import student_app
from tests.web.conftest import create_user, csrf_of, make_client, sign_in

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"


@pytest.fixture
async def synced_app(database, settings: Settings) -> AsyncIterator[tuple[FastAPI, MutableClock]]:
    problems = catalogue(20)
    sim = SimulatedCodeforces(problems=problems)
    # Last online a week ago: later syncs find nothing new and skip user.status.
    sim.add(
        generate_user(
            random.Random(7),
            IdSource(),
            "tourist",
            submissions=30,
            now=unix(NOW - timedelta(days=7)),
            problems=problems,
        )
    )
    clock = MutableClock(NOW)
    async with student_app(settings, sim, clock) as app:
        yield app, clock


def last_synced_cell(page: str) -> str:
    cell = page[page.index('data-label="Last synced"') :]
    return cell[: cell.index("</td>")]


async def test_a_sync_that_changed_nothing_still_moves_last_synced(
    synced_app: tuple[FastAPI, MutableClock],
) -> None:
    app, clock = synced_app
    await create_user(app, "coach@example.org", Role.COACH)
    async with make_client(app) as http:
        await sign_in(http, "coach@example.org")
        token = csrf_of(await http.get("/students"))
        added = await http.post(
            "/students/new", data={"csrf_token": token, "name": "Gena", "handle": "tourist"}
        )
        assert added.status_code == 303
        await app.state.resources.broker.wait_idle()
        assert "20 Nov 2026, 12:00 UTC" in last_synced_cell((await http.get("/students")).text)

        clock.advance(timedelta(days=1, hours=3))
        assert (await http.post("/students/sync", data={"csrf_token": token})).status_code == 303
        await app.state.resources.broker.wait_idle()
        page = (await http.get("/students")).text
        assert "21 Nov 2026, 15:00 UTC" in last_synced_cell(page)
        # The page's lead names the run in the viewer's zone too (app.js localises it).
        assert 'last <time datetime="2026-11-21T15:00:00Z" data-format="datetime">' in page


async def test_student_messages_show_once_and_the_address_cannot_make_one_up(
    synced_app: tuple[FastAPI, MutableClock],
) -> None:
    app, _ = synced_app
    await create_user(app, "coach@example.org", Role.COACH)
    async with make_client(app) as http:
        await sign_in(http, "coach@example.org")
        forged = await http.get("/students?flash=Your+account+is+suspended")
        assert "suspended" not in forged.text
        token = csrf_of(forged)
        started = await http.post("/students/sync", data={"csrf_token": token})
        assert started.headers["location"] == "/students"
        await app.state.resources.broker.wait_idle()
        assert "Sync started" in (await http.get("/students")).text
        assert "Sync started" not in (await http.get("/students")).text
