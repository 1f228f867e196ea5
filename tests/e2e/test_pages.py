"""The pages in a real browser: sign-up to subscribed feed, themes, phones, escaping."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT, unavailable
from tests.e2e.conftest import PASSWORD, XSS_NAME, LiveApp, PageProblems

OpenPage = Callable[..., tuple[Any, PageProblems]]
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
  });
  return result.violations.map(v => `${v.id} (${v.impact}): ` +
    v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
}"""
PHONE = {"width": 360, "height": 780}
_counter = iter(range(1_000_000))


def new_email(label: str) -> str:
    return f"{label}-{next(_counter)}@example.org"


def sign_up(page: Any, email: str) -> None:
    page.goto("/signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    # Sign-up answers alike for known and new addresses, so it never signs anyone in.
    page.wait_for_url("**/signin")
    sign_in(page, email)
    page.wait_for_url("**/calendar")


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/signin")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def body_background(page: Any) -> tuple[int, ...]:
    value: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return tuple(int(n) for n in re.findall(r"\d+", value)[:3])


def is_dark(rgb: tuple[int, ...]) -> bool:
    return sum(rgb) / 3 < 80


def assert_no_horizontal_overflow(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"


def test_sign_up_set_preferences_copy_and_fetch_the_feed(
    open_page: OpenPage, live_app: LiveApp, screenshots: Path
) -> None:
    page, problems = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_app.url)
    email = new_email("ada")
    sign_up(page, email)

    # Sign out, then back in through the sign-in form.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r"/$"))
    sign_in(page, email)
    page.wait_for_url("**/calendar")
    assert page.get_by_role("heading", name="My calendar").is_visible()

    # Codeforces and AtCoder only, nothing longer than 5 h, no "Educational", two reminders.
    for name in ("Codeforces", "AtCoder"):
        page.locator("fieldset", has_text="Platforms").get_by_label(name).check()
    for name in ("LeetCode", "CodeChef", "HackerRank", "GeeksforGeeks", "Code360"):
        page.locator("fieldset", has_text="Platforms").get_by_label(name).uncheck()
    page.get_by_label("Longest contest (hours)").fill("5")
    page.get_by_label("Skip titles matching").fill("educational")
    page.get_by_label("Reminder 1").fill("30")
    page.get_by_label("Reminder 2").fill("1440")
    page.locator("input[name=color][value='11']").check()
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_url("**/calendar?saved=1")
    assert page.get_by_role("status").filter(has_text="saved").is_visible()
    assert page.locator("input[name=platforms][value=codeforces]").is_checked()
    assert not page.locator("input[name=platforms][value=leetcode]").is_checked()
    assert page.get_by_label("Reminder 1").input_value() in {"1440", "30"}
    preview = page.locator(".preview-card")
    assert preview.get_by_text("Codeforces Round 1001 (Div. 2)").is_visible()
    assert preview.get_by_text("Weekly Contest 450").count() == 0
    page.screenshot(path=screenshots / "calendar-desktop-light.png", full_page=True)

    # Copy the feed address with the button; the clipboard and the field agree.
    feed_url = page.locator("#feed-url").input_value()
    assert re.fullmatch(re.escape(live_app.url) + r"/feeds/[^/]+\.ics", feed_url)
    page.locator("#copy-feed-url").click()
    page.locator("#copy-status").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == feed_url

    response = httpx.get(feed_url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = {str(event["SUMMARY"]): event for event in calendar.walk("VEVENT")}
    assert "[Codeforces] Codeforces Round 1001 (Div. 2)" in events
    assert "[AtCoder] AtCoder Beginner Contest 400" in events
    assert not any("Educational" in summary for summary in events)  # excluded by the pattern
    assert not any("Heuristic" in summary for summary in events)  # ten days > 5 h
    assert not any(summary.startswith("[LeetCode]") for summary in events)
    alarms = events["[Codeforces] Codeforces Round 1001 (Div. 2)"].walk("VALARM")
    triggers = sorted(alarm["TRIGGER"].dt.total_seconds() for alarm in alarms)
    assert triggers == [-1440 * 60, -30 * 60]
    problems.assert_clean()


def test_regenerating_the_feed_link_asks_first(open_page: OpenPage) -> None:
    page, problems = open_page()
    sign_up(page, new_email("linus"))
    old_url = page.locator("#feed-url").input_value()
    page.get_by_text("Link leaked? Make a new one").click()
    regenerate = page.get_by_role("button", name="Regenerate feed link")
    regenerate.click()  # the confirmation is dismissed: nothing happens
    assert len(problems.dialogs) == 1
    assert problems.dialogs[0].startswith("confirm: Make a new feed link?")
    page.wait_for_timeout(200)
    assert page.locator("#feed-url").input_value() == old_url
    problems.accept_dialogs = True
    with page.expect_navigation():
        regenerate.click()
    page.wait_for_url("**/calendar?saved=token")
    new_url = page.locator("#feed-url").input_value()
    assert new_url != old_url
    assert httpx.get(old_url, timeout=10).status_code == 404
    assert httpx.get(new_url, timeout=10).status_code == 200
    problems.assert_clean()


def test_invalid_preferences_show_errors_next_to_fields(open_page: OpenPage) -> None:
    page, problems = open_page()
    sign_up(page, new_email("grace"))
    page.get_by_label("Skip titles matching").fill("(unclosed")
    page.get_by_role("button", name="Save preferences").click()
    field = page.get_by_label("Skip titles matching")
    field.wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    described = (field.get_attribute("aria-describedby") or "").split()
    assert "exclude_pattern-error" in described
    error = page.locator("#exclude_pattern-error")
    assert error.is_visible()
    assert "regular expression" in error.inner_text()
    assert field.input_value() == "(unclosed"  # what was typed stays
    assert page.get_by_role("alert").is_visible()  # the summary at the top of the form
    problems.assert_clean(422)


def test_home_lists_contests_in_the_viewers_zone(
    open_page: OpenPage, live_app: LiveApp, screenshots: Path
) -> None:
    page, problems = open_page(timezone_id="Asia/Tokyo", locale="en-GB")
    page.goto("/")
    card = page.locator("li.contest", has_text="Codeforces Round 1001 (Div. 2)")
    assert card.locator(".platform-badge").inner_text() == "Codeforces"
    start = card.get_attribute("data-start")
    expected = page.evaluate(
        "s => new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit',"
        " timeZone: 'Asia/Tokyo'}).format(new Date(s))",
        start,
    )
    time_text = card.locator("time").inner_text()
    assert time_text.startswith(expected)
    assert "UTC" not in time_text
    assert re.fullmatch(r"in \d h( \d+ min)?", card.locator("[data-relative]").inner_text())
    running = page.locator("li.contest", has_text="Biweekly Contest 160")
    assert running.locator("[data-relative]").inner_text() == "running now"
    assert page.locator(".health-badge.state-failing", has_text="HackerRank").count() == 1
    # The "Add to calendar" disclosure offers Google Calendar and an .ics file.
    card.get_by_text("Add to calendar").click()
    google = card.get_by_role("link", name="Google Calendar")
    assert google.is_visible()
    assert (google.get_attribute("href") or "").startswith("https://calendar.google.com/")
    ics = card.get_by_role("link", name=re.compile(r"\.ics"))
    response = httpx.get(live_app.url + (ics.get_attribute("href") or ""), timeout=10)
    assert response.status_code == 200
    assert b"Codeforces Round 1001" in response.content
    page.screenshot(path=screenshots / "home-desktop-light.png", full_page=True)
    problems.assert_clean()


def test_live_filtering_updates_the_list_and_the_address(open_page: OpenPage) -> None:
    page, problems = open_page()
    page.goto("/")
    expect(page.locator("li.contest")).to_have_count(10)
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    assert csrf
    with page.expect_request(lambda r: "platform=atcoder" in r.url) as caught:
        page.locator(".filter-bar").get_by_label("AtCoder").check()
    headers = caught.value.headers
    assert headers.get("hx-request") == "true"
    assert headers.get("x-csrf-token") == csrf  # app.js adds it to every htmx request
    expect(page.locator("li.contest")).to_have_count(2)
    assert "platform=atcoder" in page.url
    page.get_by_label("Search").fill("heuristic")
    expect(page.locator("li.contest")).to_have_count(1)
    assert "q=heuristic" in page.url
    assert page.locator("#result-count").inner_text().startswith("1 upcoming contest")
    page.get_by_label("Search").fill("no such contest anywhere")
    page.get_by_text("No contests match").wait_for()
    # Back goes through htmx's history: a whole page again, never a bare fragment.
    page.go_back()
    expect(page.locator("li.contest")).to_have_count(1)
    assert "q=heuristic" in page.url
    assert page.locator("header.site-header").count() == 1
    assert page.locator(".filter-bar input[value=atcoder]").is_checked()
    problems.assert_clean()


def test_filters_work_without_javascript(browser: Any, live_app: LiveApp) -> None:
    context = browser.new_context(base_url=live_app.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        page.locator(".filter-bar").get_by_label("LeetCode").check()
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url("**/?platform=leetcode*")
        names = page.locator("li.contest .contest-name").all_inner_texts()
        assert sorted(names) == ["Biweekly Contest 160", "Weekly Contest 450"]
    finally:
        context.close()


@pytest.mark.parametrize("how", ["system", "toggle"])
def test_dark_theme(open_page: OpenPage, screenshots: Path, how: str) -> None:
    scheme = "dark" if how == "system" else "light"
    page, problems = open_page(color_scheme=scheme)
    page.goto("/")
    assert is_dark(body_background(page)) == (scheme == "dark")
    page.locator("#theme-toggle").click()
    expected = "light" if scheme == "dark" else "dark"
    assert page.locator("html").get_attribute("data-theme") == expected
    assert is_dark(body_background(page)) == (expected == "dark")
    page.reload()  # remembered
    assert page.locator("html").get_attribute("data-theme") == expected
    assert is_dark(body_background(page)) == (expected == "dark")
    if expected == "dark":
        page.screenshot(path=screenshots / "home-desktop-dark.png", full_page=True)
    problems.assert_clean()


def test_pages_fit_a_360_px_phone(open_page: OpenPage, screenshots: Path) -> None:
    page, problems = open_page(viewport=PHONE, color_scheme="dark", is_mobile=True, has_touch=True)
    for path in ("/", "/signin", "/signup"):
        page.goto(path)
        assert_no_horizontal_overflow(page)
    page.goto("/")
    page.screenshot(path=screenshots / "home-phone-dark.png", full_page=True)
    sign_up(page, new_email("phone"))
    assert_no_horizontal_overflow(page)
    page.screenshot(path=screenshots / "calendar-phone-dark.png", full_page=True)
    light, _ = open_page(viewport=PHONE, color_scheme="light", is_mobile=True, has_touch=True)
    light.goto("/")
    assert_no_horizontal_overflow(light)
    light.screenshot(path=screenshots / "home-phone-light.png", full_page=True)
    problems.assert_clean()


def test_contest_names_are_text_never_markup(open_page: OpenPage) -> None:
    page, problems = open_page()
    page.goto("/")
    page.get_by_text(XSS_NAME, exact=True).wait_for()
    assert page.get_by_text(XSS_NAME, exact=True).is_visible()
    assert page.locator("#contest-list img").count() == 0
    assert page.locator("img[src=x]").count() == 0
    # Through an htmx swap as well.
    page.locator(".filter-bar").get_by_label("HackerRank").check()
    expect(page.locator("li.contest")).to_have_count(1)
    assert page.get_by_text(XSS_NAME, exact=True).is_visible()
    assert page.locator("img[src=x]").count() == 0
    page.wait_for_timeout(100)
    assert problems.dialogs == []
    problems.assert_clean()


def test_admin_page(open_page: OpenPage, live_app: LiveApp, screenshots: Path) -> None:
    import sqlite3

    page, problems = open_page()
    email = new_email("admin")
    sign_up(page, email)
    with sqlite3.connect(live_app.database_path()) as connection:
        connection.execute("UPDATE users SET role = 'admin' WHERE email = ?", (email,))
    page.goto("/admin")
    assert page.get_by_role("heading", name="Admin", exact=True).is_visible()
    assert (
        page.get_by_role("link", name="Admin", exact=True).get_attribute("aria-current") == "page"
    )
    health = page.locator("section", has=page.get_by_role("heading", name="Platform health"))
    assert health.get_by_text("HTTP 503 from www.hackerrank.com").is_visible()
    users = page.locator("section", has=page.get_by_role("heading", name=re.compile("Users")))
    assert users.locator("tbody th", has_text=email).is_visible()
    page.screenshot(path=screenshots / "admin-desktop-light.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert_no_horizontal_overflow(page)
    problems.assert_clean()


def test_error_pages_and_sign_in_redirect(open_page: OpenPage) -> None:
    page, problems = open_page()
    response = page.goto("/no/such/page")
    assert response is not None
    assert response.status == 404
    assert page.locator(".error-code").inner_text() == "404"
    assert page.get_by_role("link", name="Back to contests").is_visible()
    page.goto("/calendar")  # signed out: sent to sign in, and back afterwards
    page.wait_for_url(re.compile(r"/signin\?next="))
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.get_by_label("Email address").fill("nobody@example.org")
    page.get_by_label("Password", exact=True).fill("wrong password 123")
    page.get_by_role("button", name="Sign in", exact=True).click()
    error = page.get_by_role("alert")
    error.wait_for()
    assert page.locator("input[name=next]").input_value() == "/calendar"
    problems.assert_clean(404, 401, 422, 400)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_pass_axe_accessibility_checks(open_page: OpenPage, scheme: str) -> None:
    """WCAG 2.1 A/AA rules (contrast included) and axe's best practices, in both themes."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing: `make vendor` installs the npm packages")
    source = AXE.read_text()
    page, problems = open_page(color_scheme=scheme)
    found: dict[str, list[str]] = {}

    def check(path: str) -> None:
        page.evaluate(source)  # through the DevTools protocol: the page's CSP does not apply
        violations = page.evaluate(AXE_RUN)
        if violations:
            found[path] = violations

    for path in ("/", "/signin", "/signup", "/signin/forgot", "/no/such/page"):
        page.goto(path)
        check(path)
    sign_up(page, new_email(f"axe-{scheme}"))
    check("/calendar")
    page.goto("/account")
    check("/account")
    page.goto("/calendar")
    page.get_by_label("Skip titles matching").fill("(unclosed")
    page.get_by_role("button", name="Save preferences").click()
    page.locator("#exclude_pattern-error").wait_for()
    check("/calendar (with errors)")
    assert found == {}
    problems.assert_clean(404, 422)
