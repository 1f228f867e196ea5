"""The API docs in a real browser, with every request outside this server blocked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import LiveApp, PageProblems

OpenPage = Callable[..., tuple[Any, PageProblems]]


def test_docs_render_offline_from_the_footer_link(open_page: OpenPage, live_app: LiveApp) -> None:
    page, problems = open_page()
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(live_app.url + "/"):
            route.continue_()
        else:
            # As if the machine had no internet: the page must not need it.
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto("/")
    page.locator("footer").get_by_role("link", name="API").click()
    page.wait_for_url("**/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 5
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/contests").first).to_be_visible()
    assert elsewhere == []
    problems.assert_clean()
