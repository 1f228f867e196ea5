"""Outages answer 503 with Retry-After, never 500, and leave no job that nothing runs.

PostgreSQL: the app reaches the session's test database through a TCP relay of the
test's own; closing the relay makes the database unreachable for this app alone (the
shared server and every other test carry on). Redis: a `redis-server` of the test's
own on a free port, killed and started again by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import select

from cpsync.app import create_app
from cpsync.calendars.models import SyncRequest
from cpsync.settings import Settings
from cpsync.web.errors import RETRY_AFTER_SECONDS
from tests.net import free_port
from tests.recordings import RECORDED_AT, MutableClock

from .conftest import create_user, make_client, sign_in, signed_in_csrf

BROWSER = {"Accept": "text/html,application/xhtml+xml"}


class Relay:
    """A TCP relay from a loopback port to `target`; `close` drops every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        for end in (writer, upstream_writer):
            end.transport.abort()
            self._writers.discard(end)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while chunk := await source.read(65536):
        sink.write(chunk)
        await sink.drain()
    sink.write_eof()


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate({"data_dir": tmp_path, "refresh_interval_minutes": 0, **values})


@pytest.fixture
async def relay(postgres_url: str) -> AsyncIterator[Relay]:
    address = urlsplit(postgres_url)
    relay = Relay((address.hostname or "127.0.0.1", address.port or 5432))
    await relay.open()
    yield relay
    await relay.close()


@pytest.fixture
async def relayed_app(relay: Relay, postgres_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    address = urlsplit(postgres_url)
    database_url = postgres_url.replace(address.netloc, f"postgres@127.0.0.1:{relay.port}")
    app = create_app(
        _settings(tmp_path, database_url=database_url), clock=MutableClock(RECORDED_AT)
    )
    async with app.router.lifespan_context(app):
        yield app


def assert_unavailable(answer: httpx.Response, *, json: bool) -> None:
    assert answer.status_code == 503, answer.text[:500]
    assert answer.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    if json:
        assert "try again" in answer.json()["detail"]
    else:
        assert answer.headers["content-type"].startswith("text/html")
        assert "try again" in answer.text
        assert "Traceback" not in answer.text


async def test_pages_and_api_answer_503_while_the_database_is_unreachable(
    relayed_app: FastAPI, relay: Relay
) -> None:
    await create_user(relayed_app, "ann@example.org")
    async with make_client(relayed_app) as browser, make_client(relayed_app) as anonymous:
        await sign_in(browser, "ann@example.org")
        assert (await browser.get("/calendar", headers=BROWSER)).status_code == 200

        await relay.close()
        assert_unavailable(await anonymous.get("/", headers=BROWSER), json=False)
        assert_unavailable(await browser.get("/calendar", headers=BROWSER), json=False)
        assert_unavailable(await anonymous.get("/api/v1/contests"), json=True)
        assert_unavailable(await browser.get("/api/v1/calendars"), json=True)

        await relay.open()  # back: the pool's dead connections are replaced
        assert (await anonymous.get("/", headers=BROWSER)).status_code == 200
        assert (await browser.get("/calendar", headers=BROWSER)).status_code == 200


class OwnRedis:
    """A redis-server of this test's own, keeping nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        folder = str(self._folder)
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self._process = subprocess.Popen(
            [*command, "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            for _ in range(200):
                with contextlib.suppress(redis.ConnectionError):
                    if probe.ping():
                        return
                assert self._process.poll() is None, "redis-server exited"
                time.sleep(0.05)  # another process is starting to listen: polled
            raise AssertionError("redis-server did not start")
        finally:
            probe.close()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def stream_length(self, stream: str) -> int:
        probe = redis.Redis.from_url(self.url)
        try:
            return int(probe.xlen(stream))
        finally:
            probe.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def redis_app(own_redis: OwnRedis, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = _settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        broker_url=own_redis.url,
        queue_name="outage",
    )
    app = create_app(settings, clock=MutableClock(RECORDED_AT))
    async with app.router.lifespan_context(app):
        yield app


async def requests_by_state(app: FastAPI) -> dict[str, list[SyncRequest]]:
    states: dict[str, list[SyncRequest]] = {}
    async with app.state.cpsync.db.session() as session:
        for request in await session.scalars(select(SyncRequest)):
            states.setdefault(request.state, []).append(request)
    return states


async def test_sync_now_after_a_redis_restart_is_queued_and_while_it_is_down_answers_503(
    redis_app: FastAPI, own_redis: OwnRedis
) -> None:
    await create_user(redis_app, "ann@example.org")
    async with make_client(redis_app) as http:
        await sign_in(http, "ann@example.org")
        token = await signed_in_csrf(http)
        sync_now = {"X-CSRF-Token": token}
        assert (await http.post("/api/v1/sync", headers=sync_now)).status_code == 202

        own_redis.kill()
        own_redis.start()  # empty again: it keeps nothing on disk
        after_restart = await http.post("/api/v1/sync", headers=sync_now)
        assert after_restart.status_code == 202, after_restart.text
        assert own_redis.stream_length("outage:tasks") == 1

        own_redis.kill()
        assert_unavailable(await http.post("/api/v1/sync", headers=sync_now), json=True)

    states = await requests_by_state(redis_app)
    (failed,) = states["failed"]
    assert "could not be queued" in failed.summary
    assert len(states["queued"]) == 2  # both were sent; no worker runs in this test
    assert after_restart.json()["job_id"] in {request.id for request in states["queued"]}
