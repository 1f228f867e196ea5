"""One contest that cannot be written as iCalendar (a CR/LF in its key and URL, stored
before the parsers checked them) is left out of feeds; every other contest is served."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from icalendar import Calendar

from cpsync.app import create_app
from cpsync.db import Database
from cpsync.settings import Settings
from tests.recordings import RECORDED_AT, MutableClock
from tests.web.conftest import WebClient, accounts_of, add_contest, make_client

SOON = RECORDED_AT + timedelta(days=1)


@pytest.fixture
async def app(database: Database, settings: Settings) -> AsyncIterator[FastAPI]:
    quiet = settings.model_copy(update={"refresh_interval_minutes": 0})
    application = create_app(quiet, clock=MutableClock(RECORDED_AT))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebClient]:
    async with make_client(app) as http:
        yield http


@pytest.fixture
async def bad_key(app: FastAPI) -> str:
    """A stored contest whose key and URL carry a header injection, between two good ones.

    Unique per test, so the once-per-contest warning is this test's own."""
    key = f"x\r\nX-Evil: {uuid.uuid4().hex[:8]}"
    await add_contest(app, "2001", SOON)
    await add_contest(app, key, SOON + timedelta(hours=3), platform="hackerrank")
    await add_contest(app, "sprint-1", SOON + timedelta(hours=6), platform="hackerrank")
    return key


async def feed_path(app: FastAPI) -> str:
    context = app.state.cpsync
    async with context.db.session() as session:
        accounts = accounts_of(app, session)
        user = await accounts.create_user("ada@example.com", None)
        token = accounts.reveal_feed_token(await accounts.feed_token(user))
        await session.commit()
    return f"/feeds/{token}.ics"


def uids(body: bytes) -> set[str]:
    return {str(event["UID"]) for event in Calendar.from_ical(body).walk("VEVENT")}


async def test_personal_feed_serves_the_other_contests(
    app: FastAPI, client: WebClient, bad_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = await feed_path(app)

    with caplog.at_level(logging.WARNING, logger="cpsync.contests.ics"):
        answers = [await client.get(path) for _ in range(3)]

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert uids(answer.content) == {"codeforces-2001@cpsync", "hackerrank-sprint-1@cpsync"}
        assert b"X-Evil" not in answer.content
    skipped = [r for r in caplog.records if "contests.ics.event_skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert repr(bad_key) in skipped[0].getMessage()


async def test_unknown_token_still_answers_not_found(
    client: WebClient, bad_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = await client.get("/feeds/no-such-token.ics")

    assert answer.status_code == 404
    assert "No feed at this address." in answer.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_single_contest_download_refuses_only_the_bad_one(
    client: WebClient, bad_key: str
) -> None:
    bad = await client.get(f"/contests/hackerrank/{quote(bad_key, safe='')}.ics")
    good = await client.get("/contests/hackerrank/sprint-1.ics")

    assert bad.status_code == 404
    assert "cannot be offered as a calendar" in bad.text
    assert good.status_code == 200
    assert uids(good.content) == {"hackerrank-sprint-1@cpsync"}


async def test_single_contest_download_with_a_line_break_in_the_name(
    app: FastAPI, client: WebClient
) -> None:
    await add_contest(app, "2002", SOON, name="Round 2002\r\nX-Evil: 1")

    answer = await client.get("/contests/codeforces/2002.ics")

    assert answer.status_code == 200
    calendar = Calendar.from_ical(answer.content)
    assert str(calendar["X-WR-CALNAME"]) == "Round 2002 X-Evil: 1"
    assert b"\r\nX-Evil" not in answer.content
