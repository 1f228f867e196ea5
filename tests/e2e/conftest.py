"""Browser tests: the real app under uvicorn on a free port, driven by Debian's Chromium.

One server and one browser serve the whole module set; every test opens its own browser
context (cookies, storage, viewport, colour scheme, time zone), so tests do not share state
except the seeded contests, which none of them changes.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cpsync.contests.merge import plan_merge
from cpsync.contests.repository import ContestRepository
from cpsync.db import open_database
from cpsync.platforms.base import ParsedContest
from cpsync.settings import Settings
from tests.conftest import unavailable
from tests.net import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(
    os.environ.get("CPSYNC_E2E_SCREENSHOTS", Path(tempfile.gettempdir()) / "cpsync-e2e-screens")
)
XSS_NAME = "<img src=x onerror=alert(1)>"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class SeedContest:
    platform: str
    key: str
    name: str
    starts_in_minutes: int
    duration_minutes: int


LONG_NAME = (
    "Educational Codeforces Round 180 (Rated for Div. 2), a deliberately long contest name "
    "that has to wrap on a phone"
)
# Relative to the moment the server starts; the app runs on the real clock.
SEED = [
    SeedContest("leetcode", "biweekly-160", "Biweekly Contest 160", -30, 90),
    SeedContest("codeforces", "2101", "Codeforces Round 1001 (Div. 2)", 3 * 60, 120),
    SeedContest("hackerrank", "xss", XSS_NAME, 5 * 60, 60),
    SeedContest("codechef", "START200", "Starters 200 (Rated till 5 stars)", 30 * 60, 120),
    SeedContest("atcoder", "abc400", "AtCoder Beginner Contest 400", 27 * 60, 100),
    SeedContest("codeforces", "2102", LONG_NAME, 50 * 60, 120),
    SeedContest("leetcode", "weekly-450", "Weekly Contest 450", 52 * 60, 90),
    SeedContest("atcoder", "ahc050", "AtCoder Heuristic Contest 050", 75 * 60, 10 * 24 * 60),
    SeedContest("geeksforgeeks", "gfg-200", "GFG Weekly Coding Contest 200", 4 * 24 * 60, 90),
    SeedContest("code360", "weekly-160", "Code360 Weekly Contest 160", 5 * 24 * 60, 90),
]


def parsed(seed: SeedContest, now: datetime) -> ParsedContest:
    start = (now + timedelta(minutes=seed.starts_in_minutes)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=seed.duration_minutes)
    url = f"https://example.com/{seed.platform}/{seed.key}"
    return ParsedContest(
        seed.platform, seed.key, seed.name, url, start, end, seed.duration_minutes * 60
    )


async def seed_database(settings: Settings, now: datetime) -> None:
    """Store the contests through the repository and the pure merge, as a refresh would."""
    db = await open_database(settings)
    try:
        by_platform: dict[str, list[ParsedContest]] = {}
        for seed in SEED:
            by_platform.setdefault(seed.platform, []).append(parsed(seed, now))
        async with db.session() as session, session.begin():
            repository = ContestRepository(session)
            for platform, contests in by_platform.items():
                stored = await repository.stored_for_merge(platform)
                plan = plan_merge(stored, contests, now, timedelta(hours=3))
                await repository.apply_merge(platform, plan, now)
                health = await repository.health_row(platform)
                health.last_attempt_at = now
                if platform == "hackerrank":
                    health.last_failure_at = now
                    health.last_error = "HTTP 503 from www.hackerrank.com"
                    health.consecutive_failures = 3
                else:
                    health.last_success_at = now
                health.contests_seen = len(contests)
    finally:
        await db.dispose()


def run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on its own thread: Playwright's sync API owns this thread's loop."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target, name="e2e-seed")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


@dataclass
class LiveApp:
    url: str
    settings: Settings
    started_at: datetime
    names: dict[str, str] = field(default_factory=dict)

    def database_path(self) -> Path:
        return Path(self.settings.resolved_database_url().split("///", 1)[1])


class ServerThread:
    """uvicorn in a background thread; stopped by flag, joined on exit."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="e2e-uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    return CHROMIUM


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    from cpsync.app import create_app

    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'cpsync.db'}",
        public_url=url,
        refresh_interval_minutes=0,
        rate_limit_requests=100_000,
        rate_limit_auth_requests=10_000,
        # Nothing may leave the machine: every platform points at a closed port.
        **{f"{name}_base_url": "http://127.0.0.1:9" for name in _platform_names()},
    )
    now = datetime.now(UTC)
    run_async(seed_database(settings, now))
    app = create_app(settings)
    with ServerThread(app, port):
        yield LiveApp(url=url, settings=settings, started_at=now)


def _platform_names() -> list[str]:
    from cpsync.platforms.registry import PLATFORMS

    return list(PLATFORMS)


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread until it stops, which would break every async test collected after tests/e2e.
@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageProblems:
    """Console errors (CSP violations show up here), page errors and dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False

    def watch(self, page: Any) -> None:
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            if self.accept_dialogs:
                dialog.accept()
            else:
                dialog.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self, *expected_statuses: int) -> None:
        """No errors, apart from the browser's note on a deliberately provoked HTTP status."""
        allowed = tuple(f"status of {status} " for status in expected_statuses)
        unexpected = [
            text
            for text in self.console_errors
            if not (allowed and any(a in text for a in allowed))
        ]
        assert unexpected == []
        assert self.page_errors == []


@pytest.fixture
def open_page(browser: Any, live_app: LiveApp) -> Iterator[Callable[..., tuple[Any, PageProblems]]]:
    """`open_page(**context_options)` → (page, problems), closed after the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> tuple[Any, PageProblems]:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("timezone_id", "Asia/Kolkata")
        options.setdefault("locale", "en-GB")
        context = browser.new_context(base_url=live_app.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        problems = PageProblems()
        problems.watch(page)
        return page, problems

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
