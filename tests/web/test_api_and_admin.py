"""The JSON API, health probes, and the admin page with its refresh job."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from cpsync.accounts.models import Role
from cpsync.platforms.registry import PLATFORMS
from tests.recordings import RECORDED_AT, serve_all
from tests.replay import ReplayServer
from tests.web.conftest import WebClient, add_contest, create_user, csrf_of, sign_in


async def test_contests_filter_and_paginate(app: FastAPI, client: WebClient) -> None:
    for index in range(5):
        await add_contest(
            app,
            f"cf{index}",
            RECORDED_AT + timedelta(days=index + 1),
            name=f"Codeforces Round {index}",
        )
    await add_contest(
        app,
        "abc1",
        RECORDED_AT + timedelta(hours=5),
        platform="atcoder",
        name="AtCoder Beginner Contest 1",
    )
    await add_contest(app, "old", RECORDED_AT - timedelta(days=1))  # ended
    everything = (await client.get("/api/v1/contests")).json()
    assert everything["total"] == 6
    assert [c["key"] for c in everything["items"]][:2] == ["abc1", "cf0"]
    page = (await client.get("/api/v1/contests", params={"limit": 2, "offset": 2})).json()
    assert [c["key"] for c in page["items"]] == ["cf1", "cf2"]
    assert page["total"] == 6
    only = (await client.get("/api/v1/contests", params={"platform": "atcoder"})).json()
    assert [c["key"] for c in only["items"]] == ["abc1"]
    within = (await client.get("/api/v1/contests", params={"days": 2})).json()
    assert {c["key"] for c in within["items"]} == {"abc1", "cf0"}
    text = (await client.get("/api/v1/contests", params={"q": "ROUND 3"})).json()
    assert [c["key"] for c in text["items"]] == ["cf3"]
    item = text["items"][0]
    assert item["start"].endswith("Z") or item["start"].endswith("+00:00")
    assert item["ics_url"] == "/contests/codeforces/cf3.ics"
    assert (await client.get("/api/v1/contests", params={"platform": "myspace"})).status_code == 422
    assert (await client.get("/api/v1/contests", params={"limit": 0})).status_code == 422


async def test_home_page_filters(app: FastAPI, client: WebClient) -> None:
    await add_contest(app, "cf1", RECORDED_AT + timedelta(days=1), name="Codeforces Round 1")
    await add_contest(
        app,
        "abc1",
        RECORDED_AT + timedelta(days=9),
        platform="atcoder",
        name="AtCoder Beginner Contest 1",
    )
    page = await client.get("/", params={"platform": "atcoder"})
    assert "AtCoder Beginner Contest 1" in page.text
    assert "Codeforces Round 1" not in page.text
    page = await client.get("/", params={"days": "3"})
    assert "Codeforces Round 1" in page.text
    assert "AtCoder Beginner Contest 1" not in page.text
    partial = await client.get("/", params={"q": "beginner"}, headers={"HX-Request": "true"})
    assert "AtCoder Beginner Contest 1" in partial.text
    assert "<html" not in partial.text
    assert (await client.get("/", params={"days": "lots"})).status_code == 200


async def test_me_preferences_and_feed(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    me = (await client.get("/api/v1/me")).json()
    assert me["email"] == "ada@example.com"
    assert me["role"] == "member"
    preferences = (await client.get("/api/v1/preferences")).json()
    assert preferences["platforms"] == list(PLATFORMS)
    token = csrf_of(await client.get("/"))
    bad = await client.put(
        "/api/v1/preferences",
        json={"platforms": [], "color": "99"},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422
    assert (await client.get("/api/v1/preferences")).json() == preferences
    good = await client.put(
        "/api/v1/preferences",
        json={"platforms": ["leetcode"], "reminder_minutes": [15, 15, 60], "weekdays": [6, 5]},
        headers={"X-CSRF-Token": token},
    )
    assert good.status_code == 200
    assert good.json()["reminder_minutes"] == [60, 15]
    assert good.json()["weekdays"] == [5, 6]
    feed = (await client.get("/api/v1/feed")).json()
    regenerated = (
        await client.post("/api/v1/feed/regenerate", headers={"X-CSRF-Token": token})
    ).json()
    assert feed["feed_url"] != regenerated["feed_url"]
    assert (await client.get("/api/v1/feed")).json() == regenerated


async def test_health_probes(client: WebClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


async def test_readyz_reports_an_unreachable_cache(database, web_settings, clock) -> None:
    from cpsync.app import create_app
    from tests.web.conftest import make_client

    settings = web_settings.model_copy(
        update={"cache_url": "redis://127.0.0.1:1/0", "broker_url": "amqp://127.0.0.1:1/"}
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application), make_client(application) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["cache"].startswith("unavailable")
        assert checks["broker"].startswith("unavailable")
        # The rate limiter fails open: the site stays up without its counter store.
        assert (await http.get("/")).status_code == 200


async def test_admin_sees_users_health_jobs_and_refreshes(
    app: FastAPI, client: WebClient, replay: ReplayServer
) -> None:
    serve_all(replay)
    await create_user(app, "root@example.com", Role.ADMIN)
    await create_user(app, "ada@example.com")
    await sign_in(client, "root@example.com")
    page = await client.get("/admin")
    assert "ada@example.com" in page.text
    assert "root@example.com" in page.text
    token = csrf_of(page)
    answer = await client.post("/admin/refresh", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin")
    await app.state.resources.broker.wait_idle()
    page = await client.get("/admin")
    assert "succeeded" in page.text
    assert "codeforces:" in page.text
    health = (await client.get("/api/v1/platforms")).json()
    assert {h["platform"]: h["state"] for h in health} == dict.fromkeys(PLATFORMS, "ok")
    home = await client.get("/")
    assert home.status_code == 200


async def test_a_failing_platform_is_visible(
    app: FastAPI, client: WebClient, replay: ReplayServer
) -> None:
    from cpsync.contests.tasks import refresh
    from tests.replay import Reply

    serve_all(replay)
    replay.serve("codechef", Reply(status=404))
    await refresh(app.state.resources)
    health = {h["platform"]: h for h in (await client.get("/api/v1/platforms")).json()}
    assert health["codechef"]["state"] == "failing"
    assert health["codechef"]["last_error"]
    assert health["codeforces"]["state"] == "ok"
