"""CSV upload in a real browser: preview, progress polled by htmx, then import.

Its own server, with the simulated Codeforces held shut while the page is first shown,
so the job is certainly still running and the polling is what brings the preview in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpsync.settings import Settings
from cpsync.students.routes import build_router
from tests.e2e.conftest import ServerThread, run_async
from tests.e2e.test_students import seed_coach, sign_in
from tests.net import free_port
from tests.students.simulated_codeforces import SimulatedCodeforces, SimUser, serve_http

CSV = "name,handle,phone\r\nGennady,tourist,+91 98765 43210\r\nNobody,no_such_user_1,\r\n"


@pytest.fixture(scope="module")
def codeforces() -> SimulatedCodeforces:
    return SimulatedCodeforces([SimUser("tourist", registered=0, last_online=0)], problems=[])


@pytest.fixture(scope="module")
def server_url(
    tmp_path_factory: pytest.TempPathFactory, codeforces: SimulatedCodeforces
) -> Iterator[str]:
    from cpsync.app import create_app

    data_dir: Path = tmp_path_factory.mktemp("e2e-import")
    port = free_port()
    with serve_http(codeforces) as base_url:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=data_dir,
            database_url=f"sqlite+aiosqlite:///{data_dir / 'cpsync.db'}",
            public_url=f"http://127.0.0.1:{port}",
            refresh_interval_minutes=0,
            rate_limit_requests=100_000,
            rate_limit_auth_requests=10_000,
            codeforces_base_url=base_url,
            codeforces_interval_seconds=0.01,
        )
        run_async(seed_coach(settings))
        app = create_app(settings)
        if not any(getattr(route, "path", "") == "/students" for route in app.routes):
            app.include_router(build_router(settings))
        with ServerThread(app, port):
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                codeforces.open.set()  # a failed test must not leave a request hanging


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=server_url, timezone_id="Asia/Kolkata")
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.errors = errors
    yield tab
    context.close()


def test_preview_shows_progress_then_imports(page: Any, codeforces: SimulatedCodeforces) -> None:
    sign_in(page)
    page.goto("/students/import")
    page.get_by_label("CSV file").set_input_files(
        {"name": "students.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    codeforces.open.clear()
    page.get_by_role("button", name="Preview changes").click()
    page.wait_for_url("**/students/import/*")
    page.get_by_role("heading", name="Preparing the preview").wait_for()
    assert page.locator("#import-progress").get_attribute("max") == "2"

    codeforces.open.set()  # htmx polls the job's section and swaps the preview in
    page.get_by_role("heading", name="Preview: nothing is saved yet").wait_for()
    assert "1 to add, 0 to update, 0 unchanged, 1 row with errors" in page.content()
    assert "Line 3: handle: Codeforces has no user with this handle." in page.content()
    assert page.locator("h1").count() == 1  # the section was swapped, not the whole page
    assert page.locator("#import-job").count() == 1

    page.get_by_role("button", name="Import these changes").click()
    page.get_by_role("heading", name="Result").wait_for()
    assert "1 added, 0 updated, 0 unchanged, 1 row skipped." in page.content()
    page.goto("/students")
    assert page.get_by_role("link", name="Gennady").count() == 1
    assert page.errors == []
