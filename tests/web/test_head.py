"""HEAD answers like GET without the body: calendar clients probe feeds with it."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from tests.recordings import RECORDED_AT
from tests.web.conftest import WebClient, add_contest, make_client
from tests.web.test_feeds import _feed_path

SAME_HEADERS = ("content-type", "content-length", "etag", "last-modified", "cache-control")


async def test_head_on_the_feed_has_the_get_headers_and_no_body(
    app: FastAPI, client: WebClient
) -> None:
    await add_contest(app, "2101", RECORDED_AT + timedelta(days=1))
    path = await _feed_path(app, client)
    async with make_client(app) as calendar_app:  # no session: the token is the key
        got = await calendar_app.get(path)
        probed = await calendar_app.head(path)
        assert got.status_code == probed.status_code == 200
        assert probed.content == b""
        for name in SAME_HEADERS:
            assert probed.headers.get(name) == got.headers.get(name), name
        assert int(probed.headers["content-length"]) == len(got.content) > 0
        unchanged = await calendar_app.head(path, headers={"if-none-match": got.headers["etag"]})
        assert unchanged.status_code == 304
        assert (await calendar_app.head("/feeds/not-a-token.ics")).status_code == 404


async def test_head_on_pages_and_the_api(client: WebClient) -> None:
    for path in ("/", "/signin", "/api/v1/platforms", "/healthz", "/static/css/app.css"):
        got, probed = await client.get(path), await client.head(path)
        assert probed.status_code == got.status_code == 200, path
        assert probed.content == b""
        assert probed.headers["content-type"] == got.headers["content-type"]
    # Only GET routes gain HEAD: a form's POST route still refuses it.
    assert (await client.head("/signout")).status_code == 405
