"""A coach's own pages over ASGI: the sync schedule on the settings page (and the
embedded scheduler's loop when one coach's stored schedule is broken), the profile's
filters, the reminders toggle's redirect and ids in paths."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cpsync.accounts.models import Role, User
from cpsync.jobs import Job
from cpsync.scheduler import process_scheduler
from cpsync.settings import Settings
from cpsync.students.models import StudentSettings, StudentSyncRun
from tests.recordings import MutableClock
from tests.web.conftest import (
    WebClient,
    cheap_argon2,
    csrf_of,
    make_client,
    sign_in,
    signed_in,
)

from .simulated_codeforces import IdSource, SimulatedCodeforces, catalogue, generate_user, unix
from .web_support import database_url, student_app

__all__ = ["cheap_argon2", "database_url"]  # fixtures, applied here too

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 17:30 in Asia/Kolkata
NEVER = "0 3 30 2 *"


@pytest.fixture
def sim() -> SimulatedCodeforces:
    rng = random.Random(5)
    problems = catalogue(20)
    simulated = SimulatedCodeforces(problems=problems)
    ids = IdSource()
    for handle in ("tourist", "Petr"):
        simulated.add(
            generate_user(rng, ids, handle, submissions=20, now=unix(NOW), problems=problems)
        )
    return simulated


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(NOW)


@pytest.fixture
async def app(
    settings: Settings, database: object, sim: SimulatedCodeforces, clock: MutableClock
) -> AsyncIterator[FastAPI]:
    async with student_app(settings, sim, clock) as application:
        yield application


async def post_settings(http: WebClient, **fields: str) -> object:
    page = await http.get("/students/settings")
    data = {"csrf_token": csrf_of(page), "timezone": "UTC", "inactive_days": "7", **fields}
    return await http.post("/students/settings", data=data)


async def add_student(http: WebClient, handle: str) -> None:
    page = await http.get("/students/new")
    data = {"csrf_token": csrf_of(page), "name": handle, "handle": handle}
    assert (await http.post("/students/new", data=data)).status_code == 303


# ---------------------------------------------------------------- the settings form


async def test_a_cron_that_never_runs_is_refused_and_the_form_keeps_what_was_typed(
    app: FastAPI,
) -> None:
    async with signed_in(app, "coach@example.com") as http:
        refused = await post_settings(
            http,
            frequency="custom",
            custom=NEVER,
            timezone="Asia/Kolkata",
            inactive_days="12",
            accepted_only="on",
            repeat_every_days="4",
        )
        assert refused.status_code == 422  # type: ignore[attr-defined]
        text = refused.text  # type: ignore[attr-defined]
        assert "This schedule never runs: February has no 30th." in text
        assert f'value="{NEVER}"' in text
        assert 'value="Asia/Kolkata"' in text
        assert 'value="12"' in text
        assert 'value="4"' in text
        assert 'value="custom" selected' in text
        assert 'id="accepted_only" name="accepted_only" type="checkbox" checked' in text
        page = await http.get("/students/settings")
        assert "Every day at 03:00 (UTC)" in page.text  # nothing was stored


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "Minute must be 0-59; 61 is out of range."),
        ("0 3 * 13 *", "Month must be 1-12; 13 is out of range."),
        ("* * * * *", "Student syncs can run at most every 15 minutes"),
        ("*/10 * * * *", "this schedule runs as often as every 10 minutes"),
    ],
)
async def test_custom_cron_errors_name_the_problem(app: FastAPI, cron: str, message: str) -> None:
    async with signed_in(app, "coach@example.com") as http:
        refused = await post_settings(http, frequency="custom", custom=cron)
        assert refused.status_code == 422  # type: ignore[attr-defined]
        assert message in refused.text  # type: ignore[attr-defined]
        assert f'value="{cron}"' in refused.text  # type: ignore[attr-defined]


async def test_a_frequent_schedule_is_saved_with_a_warning_on_the_page(app: FastAPI) -> None:
    async with signed_in(app, "coach@example.com") as http:
        saved = await post_settings(http, frequency="custom", custom="*/30 * * * *")
        assert saved.status_code == 303  # type: ignore[attr-defined]
        page = await http.get("/students/settings")
        assert 'id="schedule-warning"' in page.text
        assert "This schedule syncs as often as every 30 minutes." in page.text
        await post_settings(http, frequency="hours", every_hours="1", time="00:05")
        page = await http.get("/students/settings")
        assert "Every 1 h at minute 5" in page.text
        assert 'id="schedule-warning"' not in page.text


async def test_a_bad_number_is_named_on_its_field(app: FastAPI) -> None:
    async with signed_in(app, "coach@example.com") as http:
        refused = await post_settings(http, frequency="daily", time="07:15", inactive_days="abc")
        assert refused.status_code == 422  # type: ignore[attr-defined]
        assert 'id="inactive_days-error"' in refused.text  # type: ignore[attr-defined]
        assert 'value="abc"' in refused.text  # type: ignore[attr-defined]
        assert 'value="07:15"' in refused.text  # type: ignore[attr-defined]


# ---------------------------------------------------------------- stored broken schedule


async def coach_id(app: FastAPI, email: str) -> int:
    async with app.state.cpsync.db.session() as session:
        user = (await session.scalars(select(User).where(User.email == email))).one()
        return int(user.id)


async def test_the_embedded_loop_skips_a_stored_cron_that_never_runs(
    app: FastAPI, clock: MutableClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with signed_in(app, "broken@example.com") as broken:
        await add_student(broken, "Petr")
    async with signed_in(app, "fine@example.com") as fine:
        await add_student(fine, "tourist")
        # Due now: 17:30 in Kolkata is NOW.
        await post_settings(fine, frequency="daily", time="17:30", timezone="Asia/Kolkata")
    resources = app.state.resources
    await resources.broker.wait_idle()
    broken_id, fine_id = (
        await coach_id(app, "broken@example.com"),
        await coach_id(app, "fine@example.com"),
    )
    assert broken_id < fine_id  # the broken job comes first in every tick
    # Stored before crons were checked: write the row as an old release left it.
    async with app.state.cpsync.db.session() as session, session.begin():
        session.add(StudentSettings(coach_id=broken_id, sync_cron=NEVER, updated_at=NOW))

    scheduler = process_scheduler(resources)
    with caplog.at_level(logging.ERROR, logger="cpsync.scheduler"):
        fired = await scheduler.tick()
        await scheduler.tick()  # the same fault again is not reported again
    await resources.broker.wait_idle()

    syncs = [claim.split(":")[2] for claim in fired if claim.startswith("fire:students.sync:")]
    assert syncs == [str(fine_id)]
    async with app.state.cpsync.db.session() as session:
        runs = (await session.scalars(select(StudentSyncRun))).all()
        faults = (await session.scalars(select(Job).where(Job.kind == "scheduler"))).all()
    assert [run.coach_id for run in runs if run.trigger == "schedule"] == [fine_id]
    assert [job.state for job in faults] == ["failed"]
    assert "February has no 30th" in faults[0].summary
    assert [r.message for r in caplog.records].count(
        f"scheduler.job.failed job=students.sync:{broken_id} stage=schedule "
        f"error=cron {NEVER}: This schedule never runs: February has no 30th."
    ) == 1

    async with signed_in(app, "admin@example.com", Role.ADMIN) as admin:
        page = await admin.get("/admin")
        assert f"students.sync:{broken_id} skipped" in page.text
    async with make_client(app) as http:
        await sign_in(http, "broken@example.com")
        page = await http.get("/students/settings")
        assert "This schedule never runs: February has no 30th." in page.text


# ---------------------------------------------------------------- profile, toggle, ids


async def first_student_id(http: WebClient) -> int:
    return int((await http.get("/api/v1/students")).json()["students"][0]["id"])


async def test_an_unknown_profile_filter_is_named_and_the_default_shown(app: FastAPI) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await add_student(http, "tourist")
        student_id = await first_student_id(http)
        page = await http.get(f"/students/{student_id}?contests=5&problems=abc")
        assert page.status_code == 200
        assert (
            "“5” is not a period for the contest history (choose 30, 90, 365 days or All); "
            "showing the last 90 days." in page.text
        )
        assert "“abc” is not a period for problem solving" in page.text
        assert "showing the last 30 days." in page.text
        chosen = f'href="/students/{student_id}?contests=90&amp;problems=30" aria-current="true"'
        assert chosen in page.text
        plain = await http.get(f"/students/{student_id}?contests=all&problems=7")
        assert "is not a period" not in plain.text


@pytest.mark.parametrize("path", ["abc", "0", "-3", "99999999999", "\uff11\uff12"])
async def test_a_student_path_that_is_no_id_is_not_found(app: FastAPI, path: str) -> None:
    async with signed_in(app, "coach@example.com") as http:
        page = await http.get(f"/students/{path}")
        assert page.status_code == 404
        assert "No such student." in page.text
        assert (await http.get(f"/students/{path}/edit")).status_code == 404
        assert (await http.get(f"/api/v1/students/{path}")).status_code == 404


@pytest.mark.parametrize(
    ("referer", "location"),
    [
        ("http://testserver/students?page=2&sort=rating", "/students?page=2&sort=rating"),
        ("/students/{id}?contests=all", "/students/{id}?contests=all"),
        ("https://evil.example/phish", "/students"),
        ("//evil.example/phish", "/students"),
        ("/\\evil.example/phish", "/students"),
        ("http://testserver.evil.example/students", "/students"),
        ("javascript:alert(1)", "/students"),
        (None, "/students"),
    ],
)
async def test_the_plain_reminders_toggle_returns_only_to_our_own_pages(
    app: FastAPI, referer: str | None, location: str
) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await add_student(http, "tourist")
        student_id = await first_student_id(http)
        csrf = csrf_of(await http.get("/students"))
        headers = {"referer": referer.format(id=student_id)} if referer else {}
        answer = await http.post(
            f"/students/{student_id}/reminders",
            data={"csrf_token": csrf, "enabled": "off"},
            headers=headers,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == location.format(id=student_id)
