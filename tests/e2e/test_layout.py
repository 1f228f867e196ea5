"""Wide tables on tablets and phones: the students table and the calendar sync page fit
the window (nothing scrolls sideways), and run times show in the viewer's zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from cpsync.accounts.models import Role
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.calendars.models import CalendarLink, SyncRunRow
from cpsync.clock import utc_now
from cpsync.db import open_database
from cpsync.students.models import Student
from tests.conftest import unavailable
from tests.e2e.conftest import PASSWORD, LiveApp, PageProblems, run_async

OpenPage = Callable[..., tuple[Any, PageProblems]]
COACH = "layout-coach@example.org"
TABLET = {"width": 768, "height": 1024}
PHONE = {"width": 360, "height": 780}
LONG_ERROR = (
    "CalDAV server answered 503 Service Unavailable for "
    "https://calendar.example.org/remote.php/dav/calendars/someone/contests/ twice"
)


async def seed(app: LiveApp) -> None:
    db = await open_database(app.settings)
    now = utc_now()
    try:
        async with db.session() as session, session.begin():
            policy = SessionPolicy.from_settings(app.settings)
            accounts = AccountService(session, None, policy, utc_now)  # type: ignore[arg-type]
            coach = await accounts.create_user(COACH, PASSWORD, Role.COACH)
            for number in range(6):
                handle = f"very_long_handle_number_{number}"
                session.add(
                    Student(
                        coach_id=coach.id,
                        name=f"Aleksandra Konstantinovna Ivanova-Petrova {number}",
                        email=f"aleksandra.konstantinovna.ivanova{number}@university.example.org",
                        phone="+91 98765 43210",
                        handle=handle,
                        handle_key=handle.casefold(),
                        group_name="Evening group B",
                        created_at=now,
                        updated_at=now,
                        rating=1850,
                        max_rating=1999,
                        rank="expert",
                        last_synced_at=now - timedelta(hours=number),
                        reminders_sent=number,
                    )
                )
            link = CalendarLink(
                user_id=coach.id,
                kind="caldav",
                target="https://calendar.example.org/remote.php/dav/calendars/someone/contests/",
                username="someone",
                secret_encrypted="",
                created_at=now,
                updated_at=now,
                last_run_at=now,
                last_status="failed",
            )
            session.add(link)
            await session.flush()
            for minutes in (5, 65, 125):
                session.add(
                    SyncRunRow(
                        link_id=link.id,
                        started_at=now - timedelta(minutes=minutes),
                        finished_at=now - timedelta(minutes=minutes - 1),
                        status="failed",
                        error=LONG_ERROR,
                    )
                )
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def seeded(live_app: LiveApp) -> LiveApp:
    run_async(seed(live_app))
    return live_app


def signed_in_page(open_page: OpenPage, viewport: dict[str, int]) -> tuple[Any, PageProblems]:
    page, problems = open_page(viewport=viewport, timezone_id="Asia/Kolkata")
    page.goto("/signin")
    page.get_by_label("Email address").fill(COACH)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/calendar")
    return page, problems


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    widths = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    return int(widths[0]) - int(widths[1])


@pytest.mark.parametrize("viewport", [TABLET, PHONE], ids=["768px", "360px"])
def test_students_table_fits_with_its_actions_on_screen(
    seeded: LiveApp, open_page: OpenPage, viewport: dict[str, int]
) -> None:
    page, problems = signed_in_page(open_page, viewport)
    page.goto("/students")
    expect(page.locator(".students-table tbody tr")).to_have_count(6)
    assert overflow(page) <= 0
    row = page.locator(".students-table tbody tr").first
    for control in (
        row.get_by_role("switch"),
        row.get_by_role("link", name="Edit"),
        row.get_by_role("button", name=re.compile(r"^Sync now for .+")),
    ):
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= viewport["width"]
    problems.assert_clean()


@pytest.mark.parametrize("viewport", [TABLET, PHONE], ids=["768px", "360px"])
def test_calendar_sync_page_fits_and_shows_local_times(
    seeded: LiveApp, open_page: OpenPage, viewport: dict[str, int]
) -> None:
    page, problems = signed_in_page(open_page, viewport)
    page.goto("/calendar/sync")
    expect(page.locator("table.runs tbody tr")).to_have_count(3)
    assert overflow(page) <= 0
    times = page.locator("table.runs time").all_inner_texts()
    assert times
    for text in times:
        assert not re.search(r"\d{4}-\d\d-\d\dT", text), text  # no raw ISO strings
        assert "GMT+5:30" in text, text  # the browser's zone: Asia/Kolkata
    problems.assert_clean()


STYLE_OF = """el => { const s = getComputedStyle(el);
  return [s.borderTopWidth, s.borderTopStyle, s.paddingLeft, s.minHeight, s.borderRadius]; }"""


def test_every_text_input_looks_the_same_and_checkboxes_sit_beside_their_labels(
    seeded: LiveApp, open_page: OpenPage
) -> None:
    page, problems = signed_in_page(open_page, TABLET)
    page.goto("/calendar/sync")
    styled = page.locator("#caldav-url").evaluate(STYLE_OF)
    assert styled[1] == "solid"
    assert page.locator("#caldav-username").evaluate(STYLE_OF) == styled
    page.goto("/students/settings")
    assert page.locator("input[type='time']").first.evaluate(STYLE_OF) == styled
    page.goto("/students/new")
    assert page.get_by_label("Phone").evaluate(STYLE_OF) == styled
    box = page.locator("#reminders_enabled").bounding_box()
    label = page.locator("label[for='reminders_enabled']").bounding_box()
    assert box is not None
    assert label is not None
    assert label["x"] > box["x"] + box["width"] - 1  # beside the box, not under it
    assert abs((label["y"] + label["height"] / 2) - (box["y"] + box["height"] / 2)) < 8
    problems.assert_clean()


@pytest.mark.parametrize("viewport", [TABLET, PHONE], ids=["768px", "360px"])
def test_students_and_calendar_sync_pass_axe(
    seeded: LiveApp, open_page: OpenPage, viewport: dict[str, int]
) -> None:
    """The card layouts keep WCAG 2.1 A/AA (contrast included) and axe's best practices."""
    from tests.e2e.test_pages import AXE, AXE_RUN

    if not AXE.exists():
        unavailable(f"{AXE} is missing: `make vendor` installs the npm packages")
    source = AXE.read_text()
    page, problems = signed_in_page(open_page, viewport)
    found: dict[str, list[str]] = {}
    for path in ("/students", "/calendar/sync", "/students/new"):
        page.goto(path)
        page.evaluate(source)  # through the DevTools protocol: the page's CSP does not apply
        violations = page.evaluate(AXE_RUN)
        if violations:
            found[path] = violations
    assert found == {}
    problems.assert_clean()
