"""The student dashboard in a real browser: add a student, see the charts, toggle
reminders, download the CSV. Its own server (the student router included, Codeforces
simulated over local HTTP), sharing the package's Chromium."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.accounts.models import Role
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.clock import utc_now
from cpsync.db import open_database
from cpsync.settings import Settings
from cpsync.students.routes import build_router
from tests.e2e.conftest import ServerThread, run_async
from tests.net import free_port
from tests.students.simulated_codeforces import (
    IdSource,
    SimulatedCodeforces,
    catalogue,
    generate_user,
    serve_http,
    unix,
)

PASSWORD = "correct horse battery staple"
COACH = "coach@example.com"
OTHER_PLATFORMS = ("leetcode", "codechef", "atcoder", "hackerrank", "geeksforgeeks", "code360")
ACTIVE_DAYS = ".heatmap .hm-1, .heatmap .hm-2, .heatmap .hm-3, .heatmap .hm-4"


async def seed_coach(settings: Settings) -> None:
    db = await open_database(settings)
    try:
        async with db.session() as session, session.begin():
            policy = SessionPolicy.from_settings(settings)
            accounts = AccountService(session, None, policy, utc_now)  # type: ignore[arg-type]
            await accounts.create_user(COACH, PASSWORD, Role.COACH)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def students_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from cpsync.app import create_app

    now = datetime.now(UTC)
    problems = catalogue(60)
    sim = SimulatedCodeforces(problems=problems)
    sim.add(
        generate_user(
            random.Random(5),
            IdSource(),
            "tourist",
            submissions=400,
            now=unix(now),
            problems=problems,
            days=300,
        )
    )
    data_dir: Path = tmp_path_factory.mktemp("e2e-students")
    port = free_port()
    with serve_http(sim) as codeforces:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=data_dir,
            database_url=f"sqlite+aiosqlite:///{data_dir / 'cpsync.db'}",
            public_url=f"http://127.0.0.1:{port}",
            refresh_interval_minutes=0,
            rate_limit_requests=100_000,
            rate_limit_auth_requests=10_000,
            codeforces_base_url=codeforces,
            codeforces_interval_seconds=0.01,
            **{
                f"{name}_base_url": "http://127.0.0.1:9"
                for name in (
                    "leetcode",
                    "codechef",
                    "atcoder",
                    "hackerrank",
                    "geeksforgeeks",
                    "code360",
                )
            },
        )
        run_async(seed_coach(settings))
        app = create_app(settings)
        if not any(getattr(route, "path", "") == "/students" for route in app.routes):
            app.include_router(build_router(settings))
        with ServerThread(app, port):
            yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page(browser: Any, students_url: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=students_url, accept_downloads=True, timezone_id="Asia/Kolkata"
    )
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.errors = errors
    yield tab
    context.close()


def sign_in(page: Any) -> None:
    page.goto("/signin")
    page.get_by_label("Email").fill(COACH)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/calendar")


def test_add_student_charts_toggle_and_csv(page: Any, screenshots: Path) -> None:
    sign_in(page)
    page.goto("/students/new")
    page.get_by_label("Name").fill('Gennady, "the" Korotkevich')
    page.get_by_label("Codeforces handle").fill("tourist")
    page.get_by_label("Email").fill("gennady@example.com")
    page.get_by_role("button", name="Add student").click()
    page.wait_for_url("**/students/*")
    student_path = page.url.split("?")[0]

    # The immediate sync runs in the background: reload until its data is there.
    for _ in range(50):
        page.goto(student_path + "?contests=all&problems=all")
        if page.locator("#rating-chart").count():
            break
        page.wait_for_timeout(200)
    page.wait_for_selector("#rating-chart[data-rendered='true']")
    page.wait_for_selector("#bucket-chart[data-rendered='true']")
    assert page.locator(".heatmap .hm").count() > 300
    assert "submission" in (
        page.locator(
            ".heatmap .hm-1, .heatmap .hm-2, .heatmap .hm-3, .heatmap .hm-4"
        ).first.get_attribute("title")
        or ""
    )
    assert page.locator(".contest-table tbody tr").count() > 0
    page.screenshot(path=str(screenshots / "student-profile.png"), full_page=True)

    page.goto("/students")
    switch = page.get_by_role("switch", name='Reminders for Gennady, "the" Korotkevich')
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    page.wait_for_selector("button[role='switch'][aria-checked='false']")
    page.reload()
    assert page.get_by_role("switch").first.get_attribute("aria-checked") == "false"
    page.screenshot(path=str(screenshots / "students-table.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#download-csv").click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    assert download.suggested_filename == "students.csv"
    assert "tourist" in text
    assert '"Gennady, ""the"" Korotkevich"' in text
    assert ',"no",' in text  # reminders off (every cell is quoted)
    assert page.errors == []
