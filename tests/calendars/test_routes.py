"""The calendar sync page and API inside the real app, with the in-process broker.

Tasks run in this process (the embedded default); the calendar is a real Radicale.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cpsync.app import create_app
from cpsync.calendars import tasks as calendar_tasks
from cpsync.calendars.models import CalendarLink, SyncRunRow
from cpsync.calendars.service import CalendarService
from cpsync.contests.merge import ChangeKind
from cpsync.contests.service import RefreshReport
from cpsync.contests.tasks import changed_keys
from cpsync.resources import Resources
from cpsync.settings import Settings
from tests.calendars.service_support import NOW, add_contests
from tests.net import free_port
from tests.web.conftest import WebClient, cheap_argon2, create_user, csrf_of, make_client, sign_in

__all__ = ["cheap_argon2"]  # the fixture, applied to these tests too


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        refresh_interval_minutes=0,
        http_min_interval_seconds=0,
        http_backoff_seconds=0.01,
        outbound_allow_private=True,  # Radicale on 127.0.0.1 (development allows it too)
    )
    application = create_app(settings, clock=lambda: NOW)
    async with application.router.lifespan_context(application):
        await add_contests(application.state.cpsync.db)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebClient]:
    await create_user(app, "ann@example.org")
    async with make_client(app) as http:
        await sign_in(http, "ann@example.org")
        yield http


async def _wait_json(http: WebClient, url: str, key: str, wanted: str) -> dict[str, str]:
    for _ in range(200):
        body = (await http.get(url)).json()
        item = body[0] if isinstance(body, list) else body
        if item[key] == wanted:
            return dict(item)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never reached {key}={wanted}: {body}")


async def _connect(http: WebClient, radicale_url: str) -> None:
    page = await http.get("/calendar/sync")
    assert page.status_code == 200
    assert "No calendar connected yet" in page.text
    url = f"{radicale_url}/ann/contests-{uuid.uuid4().hex[:8]}/"
    answer = await http.post(
        "/calendar/sync/caldav",
        data={"url": url, "username": "ann", "password": "pw", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 303


async def test_connect_caldav_then_sync_now_through_the_api(
    client: WebClient, radicale_url: str
) -> None:
    await _connect(client, radicale_url)
    await _wait_json(client, "/api/v1/calendars", "last_status", "succeeded")

    token = csrf_of(await client.get("/calendar/sync"))
    answer = await client.post("/api/v1/sync", headers={"X-CSRF-Token": token})
    assert answer.status_code == 202
    job = answer.json()
    done = await _wait_json(client, job["status_url"], "state", "succeeded")
    assert done["job_id"] == job["job_id"]

    page = await client.get("/calendar/sync")
    assert "succeeded" in page.text
    assert "Sync now" in page.text


async def test_sync_api_needs_csrf_and_a_session(app: FastAPI, client: WebClient) -> None:
    assert (await client.post("/api/v1/sync")).status_code == 403
    async with make_client(app, ip="203.0.113.9") as anonymous:
        assert (await anonymous.get("/api/v1/sync/abc")).status_code == 401
        assert (await anonymous.get("/calendar/sync")).status_code in (303, 401)


async def test_bad_caldav_address_is_refused(client: WebClient) -> None:
    page = await client.get("/calendar/sync")
    answer = await client.post(
        "/calendar/sync/caldav",
        data={"url": "ftp://x", "username": "a", "password": "b", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 422
    assert "must start with https://" in answer.text


async def test_fifty_concurrent_sync_requests_run_at_most_twice(
    app: FastAPI, client: WebClient, radicale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _connect(client, radicale_url)
    await _wait_json(client, "/api/v1/calendars", "last_status", "succeeded")
    # Make each run last long enough that all 50 requests arrive during the first.
    spans: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    requests = 50
    asked = 0
    all_asked = asyncio.Event()
    flags = app.state.resources.cache
    record_request = flags.set

    async def counted(key: str, value: bytes, ttl_seconds: float) -> None:
        nonlocal asked
        await record_request(key, value, ttl_seconds)
        if key.startswith("pending:"):  # every queued sync leaves its request first
            asked += 1
            if asked == requests:
                all_asked.set()

    def slow(service: CalendarService) -> None:
        original = service._run

        async def slow_run(user_id: int, check_remote: bool) -> Any:
            began = loop.time()
            await all_asked.wait()  # the first run lasts until every request has arrived
            result = await original(user_id, check_remote)
            spans.append((began, loop.time()))
            return result

        service._run = slow_run  # type: ignore[method-assign]

    _change_services(monkeypatch, slow)
    flags.set = counted
    token = csrf_of(await client.get("/calendar/sync"))
    answers = await asyncio.gather(
        *(client.post("/api/v1/sync", headers={"X-CSRF-Token": token}) for _ in range(requests))
    )
    assert {a.status_code for a in answers} == {202}, answers[0].text
    for answer in answers:
        await _wait_json(client, answer.json()["status_url"], "state", "succeeded")
    assert 1 <= len(spans) <= 2
    spans.sort()
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


async def test_a_manual_refresh_fans_out_to_the_concerned_users(
    app: FastAPI, client: WebClient, radicale_url: str
) -> None:
    await _connect(client, radicale_url)
    await _wait_json(client, "/api/v1/calendars", "last_status", "succeeded")
    resources = app.state.resources
    moved = [RefreshReport("codeforces", changes=[("2050", ChangeKind.RESCHEDULED)])]
    unrelated = [RefreshReport("codeforces", changes=[("nope", ChangeKind.ADDED)])]
    assert len(await calendar_tasks.fan_out(resources, changed_keys(moved))) == 1
    assert await calendar_tasks.fan_out(resources, changed_keys(unrelated)) == []


def _change_services(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[CalendarService], None]
) -> None:
    """Every calendar service the tasks build from now on gets `change`d first."""
    build = calendar_tasks.calendar_service

    def changed(resources: Resources) -> CalendarService:
        service = build(resources)
        change(service)
        return service

    monkeypatch.setattr(calendar_tasks, "calendar_service", changed)


async def _sync_now(http: WebClient) -> dict[str, str]:
    token = csrf_of(await http.get("/calendar/sync"))
    answer = await http.post("/api/v1/sync", headers={"X-CSRF-Token": token})
    assert answer.status_code == 202
    return dict(answer.json())


class CrashingHttp:
    """A bug deep inside a sync: the transport raises what no calendar code expects."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def send(self, method: str, url: str, **kwargs: Any) -> Any:
        if method == "REPORT":
            raise KeyError("a bug")
        return await self.inner.send(method, url, **kwargs)


async def test_an_unexpected_error_ends_the_run_and_the_job_as_failed(
    app: FastAPI,
    client: WebClient,
    radicale_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _connect(client, radicale_url)
    await _wait_json(client, "/api/v1/calendars", "last_status", "succeeded")
    resources = app.state.resources
    working = resources.user_http
    resources.user_http = CrashingHttp(working)

    job = await _sync_now(client)
    done = await _wait_json(client, job["status_url"], "state", "failed")

    assert "unexpected error" in done["summary"]
    crashed = [r for r in caplog.records if "calendars.sync.crashed" in r.getMessage()]
    assert crashed
    assert crashed[0].exc_info is not None  # the traceback is in the log
    async with app.state.cpsync.db.session() as session:
        statuses = (await session.scalars(select(SyncRunRow.status))).all()
    assert "running" not in statuses
    page = await client.get("/calendar/sync")
    assert "unexpected error" in page.text

    resources.user_http = working  # fixed: the next sync works again
    again = await _sync_now(client)
    await _wait_json(client, again["status_url"], "state", "succeeded")


async def test_a_calendar_server_down_makes_one_failed_run_with_its_attempts(
    app: FastAPI, client: WebClient, radicale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _connect(client, radicale_url)
    await _wait_json(client, "/api/v1/calendars", "last_status", "succeeded")
    for _ in range(2):
        await _wait_json(client, (await _sync_now(client))["status_url"], "state", "succeeded")
    delays: list[float] = []

    async def no_wait(seconds: float) -> None:  # the retries fire at once, delays recorded
        delays.append(seconds)

    def without_waits(service: CalendarService) -> None:
        service._sleep = no_wait

    _change_services(monkeypatch, without_waits)
    async with app.state.cpsync.db.session() as session, session.begin():
        link = (await session.scalars(select(CalendarLink))).one()
        link.target = f"http://127.0.0.1:{free_port()}/ann/contests/"  # the server went down

    job = await _sync_now(client)
    done = await _wait_json(client, job["status_url"], "state", "failed")
    await app.state.resources.broker.wait_idle()  # nothing left for the queue to retry

    assert "cannot reach" in done["summary"]
    async with app.state.cpsync.db.session() as session:
        runs = (await session.scalars(select(SyncRunRow).order_by(SyncRunRow.id))).all()
    assert [(r.status, r.attempts) for r in runs] == [
        ("succeeded", 1),
        ("succeeded", 1),
        ("succeeded", 1),
        ("failed", 6),  # 1 + CPSYNC_QUEUE_MAX_RETRIES
    ]
    assert len(delays) == 5
    assert delays == sorted(delays)  # backing off
    assert delays[0] >= 5  # CPSYNC_QUEUE_RETRY_DELAY_SECONDS
    page = await client.get("/calendar/sync")
    assert "6 attempts" in page.text
    assert page.text.count("succeeded") >= 3  # older runs still in the history
