"""The personal ICS feed and the single-contest download."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from fastapi import FastAPI
from icalendar import Calendar

from tests.recordings import RECORDED_AT, MutableClock
from tests.web.conftest import WebClient, add_contest, create_user, csrf_of, make_client, sign_in


async def _feed_path(app: FastAPI, client: WebClient, **preferences) -> str:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    token = csrf_of(await client.get("/"))
    body = {
        "platforms": ["codeforces", "atcoder"],
        "reminder_minutes": [60, 10],
        "timezone": "Asia/Kolkata",
        **preferences,
    }
    saved = await client.put("/api/v1/preferences", json=body, headers={"X-CSRF-Token": token})
    assert saved.status_code == 200, saved.text
    feed_url = (await client.get("/api/v1/feed")).json()["feed_url"]
    return feed_url.split("127.0.0.1:8000", 1)[1]


def events(body: bytes) -> dict[str, dict[str, object]]:
    calendar = Calendar.from_ical(body)
    found = {}
    for event in calendar.walk("VEVENT"):
        alarms = [str(alarm.get("trigger").to_ical().decode()) for alarm in event.walk("VALARM")]
        found[str(event.get("uid"))] = {"status": str(event.get("status")), "alarms": alarms}
    return found


async def test_feed_applies_filters_and_reminders(app: FastAPI, client: WebClient) -> None:
    soon = RECORDED_AT + timedelta(days=1)
    await add_contest(app, "1", soon.replace(hour=14, minute=35))  # 20:05 Kolkata
    await add_contest(
        app, "2", soon.replace(hour=3), name="Round 2 (Div. 1)"
    )  # excluded by pattern
    await add_contest(app, "abc1", soon, platform="atcoder", hours=6)  # too long
    await add_contest(app, "lc1", soon, platform="leetcode")  # platform not chosen
    path = await _feed_path(app, client, exclude_pattern="div\\. 1", max_duration_hours=4)
    async with make_client(app) as anonymous:
        answer = await anonymous.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    found = events(answer.content)
    assert set(found) == {"codeforces-1@cpsync"}
    assert found["codeforces-1@cpsync"]["alarms"] == ["-PT1H", "-PT10M"]


async def test_feed_hours_are_in_the_users_zone(app: FastAPI, client: WebClient) -> None:
    day = RECORDED_AT + timedelta(days=2)
    await add_contest(app, "evening", day.replace(hour=14, minute=35))  # 20:05 in Kolkata
    await add_contest(app, "morning", day.replace(hour=3, minute=30))  # 09:00 in Kolkata
    path = await _feed_path(app, client, hour_from=18, hour_to=23)
    answer = await client.get(path)
    assert set(events(answer.content)) == {"codeforces-evening@cpsync"}


async def test_conditional_requests(app: FastAPI, client: WebClient) -> None:
    contest = await add_contest(app, "1", RECORDED_AT + timedelta(days=1))
    path = await _feed_path(app, client)
    first = await client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 304
    assert (
        await client.get(path, headers={"If-None-Match": f'W/{etag}, "other"'})
    ).status_code == 304
    assert (await client.get(path, headers={"If-Modified-Since": modified})).status_code == 304
    assert (await client.get(path, headers={"If-None-Match": '"stale"'})).status_code == 200
    # A change to a contest in the feed changes the validators.
    async with app.state.cpsync.db.session() as session:
        row = await session.get(type(contest), contest.id)
        row.name, row.updated_at = "Renamed", RECORDED_AT + timedelta(minutes=5)
        await session.commit()
    changed = await client.get(path, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.headers["last-modified"] != modified


async def test_cancelled_contests_stay_for_seven_days(
    app: FastAPI, client: WebClient, clock: MutableClock
) -> None:
    start = RECORDED_AT + timedelta(days=20)
    await add_contest(app, "gone", start, status="cancelled", updated_at=RECORDED_AT)
    path = await _feed_path(app, client)
    assert (
        events((await client.get(path)).content)["codeforces-gone@cpsync"]["status"] == "CANCELLED"
    )
    clock.advance(timedelta(days=6, hours=23))
    assert "codeforces-gone@cpsync" in events((await client.get(path)).content)
    clock.advance(timedelta(hours=2))
    assert "codeforces-gone@cpsync" not in events((await client.get(path)).content)


async def test_regenerate_revokes_the_old_token(app: FastAPI, client: WebClient) -> None:
    old = await _feed_path(app, client)
    assert (await client.get(old)).status_code == 200
    token = csrf_of(await client.get("/calendar"))
    answer = await client.post("/calendar/feed-token", data={"csrf_token": token})
    assert answer.status_code == 303
    new = (await client.get("/api/v1/feed")).json()
    assert new["feed_url"].split("127.0.0.1:8000", 1)[1] != old
    assert new["webcal_url"].startswith("webcal://127.0.0.1:8000/feeds/")
    assert new["google_subscribe_url"].startswith(
        "https://calendar.google.com/calendar/render?cid=webcal%3A%2F%2F"
    )
    assert (await client.get(old)).status_code == 404


async def test_the_token_is_stored_hashed_and_encrypted(app: FastAPI, client: WebClient) -> None:
    path = await _feed_path(app, client)
    token = path.removeprefix("/feeds/").removesuffix(".ics")
    assert len(token) >= 43
    async with app.state.cpsync.db.engine.connect() as connection:
        rows = (
            await connection.exec_driver_sql("SELECT token_hash, token_encrypted FROM feed_tokens")
        ).all()
    assert len(rows) == 1
    assert token not in rows[0][0]
    assert token not in rows[0][1]


async def test_unknown_token_is_a_plain_404_taking_as_long_as_a_hit(
    app: FastAPI, client: WebClient
) -> None:
    path = await _feed_path(app, client)
    missing = "/feeds/" + "A" * 43 + ".ics"
    answer = await client.get(missing)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/json")

    async def timed(url: str) -> float:
        started = time.perf_counter()
        await client.get(url)
        return time.perf_counter() - started

    for _ in range(3):  # warm up
        await timed(path)
        await timed(missing)
    hits, misses = [], []
    for _ in range(15):
        hits.append(await timed(path))
        misses.append(await timed(missing))
    ratio = statistics.median(misses) / statistics.median(hits)
    assert 0.5 < ratio < 2, (statistics.median(misses), statistics.median(hits))


async def test_single_contest_download(app: FastAPI, client: WebClient) -> None:
    await add_contest(app, "1900", RECORDED_AT + timedelta(days=1))
    answer = await client.get("/contests/codeforces/1900.ics")
    assert answer.status_code == 200
    assert 'filename="codeforces-1900.ics"' in answer.headers["content-disposition"]
    assert set(events(answer.content)) == {"codeforces-1900@cpsync"}
    assert (await client.get("/contests/codeforces/nope.ics")).status_code == 404
    home = await client.get("/")
    assert "/contests/codeforces/1900.ics" in home.text
    assert "calendar.google.com/calendar/render?action=TEMPLATE" in home.text


async def test_a_hostile_title_filter_cannot_freeze_the_feed(
    app: FastAPI, client: WebClient
) -> None:
    """Issue 14 item 1: this pattern, saved through the API, pinned the server's CPU for
    hours on one 50-character title under Python's backtracking engine."""
    soon = RECORDED_AT + timedelta(days=1)
    await add_contest(app, "1", soon, name="a" * 49 + "!")
    await add_contest(app, "2", soon, name="Round x=y")
    path = await _feed_path(app, client, exclude_pattern=".*" * 10 + "=")
    async with make_client(app) as anonymous:
        answer = await anonymous.get(path)
    assert answer.status_code == 200
    assert set(events(answer.content)) == {"codeforces-1@cpsync"}
    page = await client.get("/calendar")
    assert page.status_code == 200
