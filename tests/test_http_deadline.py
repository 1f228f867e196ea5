"""A trickling upstream never holds cpsync for long (issue 14 item 3).

The upstream here is a real local HTTP server that answers with headers at once and then
one byte of body per `TRICKLE_SECONDS`, forever: every read succeeds well within the
per-read timeout, so only the overall deadline (`http_deadline_seconds`) ends the call,
and only cancellation ends it early when cpsync shuts down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cpsync.contests import tasks
from cpsync.contests.service import refresh_running
from cpsync.http import HttpClient, RetriableUpstreamError
from cpsync.platforms.registry import PLATFORMS
from cpsync.resources import user_http_client
from cpsync.settings import Settings
from cpsync.worker import open_process
from tests.net import free_port
from tests.recordings import RECORDED_AT, MutableClock, serve_all
from tests.replay import ReplayServer

TRICKLE_SECONDS = 0.1  # far below every per-read timeout used here
# Bounds for "it ended", generous for a loaded 2-core machine; never the assertion of speed.
ENDS_WITHIN = 60.0
# A cpsync process spends up to ~20 s importing on that machine before it does anything.
PROCESS_ENDS_WITHIN = 180.0


class _Listener(ThreadingHTTPServer):
    # Room for every platform connecting at once: past the backlog, a connection attempt
    # waits a second for its SYN to be sent again, which would eat a short deadline.
    request_queue_size = 64
    daemon_threads = True


class TrickleServer:
    """Trickles every answer; after `recover(base_url)` it relays requests there instead."""

    def __init__(self) -> None:
        self.requests = 0
        self.trickling = threading.Event()  # set once an answer is being trickled
        self._recovered_to: str | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._server = _Listener(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def recover(self, base_url: str) -> None:
        self._recovered_to = base_url

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with server._lock:
                    server.requests += 1
                if server._recovered_to is not None:
                    self._relay(server._recovered_to + self.path, body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                server.trickling.set()
                try:
                    while not server._stopped.wait(TRICKLE_SECONDS):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up: what the tests want

            def _relay(self, url: str, body: bytes | None) -> None:
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                request = urllib.request.Request(
                    url, data=body, method=self.command, headers=headers
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def trickle() -> Iterator[TrickleServer]:
    server = TrickleServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http_timeout_seconds": 5,  # per read: never reached by a byte every 0.1 s
        "http_deadline_seconds": 1,
        "http_max_retries": 3,
        "http_backoff_seconds": 0.01,
        "http_min_interval_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def test_request_gives_up_at_the_deadline(trickle: TrickleServer) -> None:
    url = f"{trickle.base_url}/contests"
    async with HttpClient(client_settings()) as http:
        began = time.monotonic()
        with pytest.raises(RetriableUpstreamError) as caught:
            await asyncio.wait_for(http.request("GET", url), ENDS_WITHIN)
        assert time.monotonic() - began >= 1  # not before the deadline: no early give-up
    host = trickle.base_url.removeprefix("http://")
    assert caught.value.message == f"no complete answer from {host} within 1 s"
    # The deadline covers the retries too: none is begun once it has passed.
    assert trickle.requests == 1


async def test_send_gives_up_at_the_deadline(trickle: TrickleServer) -> None:
    """The one-attempt call the calendar sinks and the Codeforces student client use."""
    async with HttpClient(client_settings(http_deadline_seconds=0.5)) as http:
        with pytest.raises(RetriableUpstreamError, match=r"within 0\.5 s$"):
            await asyncio.wait_for(http.send("GET", f"{trickle.base_url}/x"), ENDS_WITHIN)


async def test_the_guarded_client_for_user_urls_has_the_same_deadline(
    trickle: TrickleServer,
) -> None:
    # Served on plain http on this machine (development), so the guard lets 127.0.0.1 by.
    async with user_http_client(client_settings()) as http:
        with pytest.raises(RetriableUpstreamError, match=r"within 1 s$"):
            await asyncio.wait_for(http.request("GET", f"{trickle.base_url}/dav/"), ENDS_WITHIN)


async def test_closing_the_client_fails_calls_in_flight_at_once(trickle: TrickleServer) -> None:
    http = HttpClient(client_settings(http_deadline_seconds=300))
    call = asyncio.create_task(http.request("GET", f"{trickle.base_url}/contests"))
    assert await asyncio.to_thread(trickle.trickling.wait, ENDS_WITHIN)
    await http.aclose()
    with pytest.raises(RetriableUpstreamError, match="cpsync is shutting down"):
        await asyncio.wait_for(call, ENDS_WITHIN)
    assert trickle.requests == 1  # not retried while closing
    with pytest.raises(RetriableUpstreamError, match="cpsync is shutting down"):
        await http.request("GET", f"{trickle.base_url}/contests")


async def test_a_refresh_ends_at_the_deadline_and_the_next_one_is_not_busy(
    trickle: TrickleServer, replay: ReplayServer, shared_fixtures: Path, tmp_path: Path
) -> None:
    """The admin's "Refresh now" (the `contests.refresh` task) is free again once the
    stuck refresh hits the deadline, and a refresh after the site recovers stores."""
    serve_all(replay)
    settings = client_settings(
        http_deadline_seconds=3,  # time enough for the recovered site to answer
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        refresh_interval_minutes=0,
        # Every platform is on this one test host, which is paced like Codeforces' host
        # (one shared bucket): keep its interval from eating the deadline.
        codeforces_interval_seconds=0.01,
        **{f"{name}_base_url": trickle.base_url for name in PLATFORMS},
    )
    async with open_process(settings, clock=MutableClock(RECORDED_AT)) as resources:
        runs = await asyncio.wait_for(tasks.refresh(resources, manual=True), ENDS_WITHIN)
        assert runs == 1
        assert not await refresh_running(resources.cache)
        health = await tasks.contest_service(resources).health()
        assert all("within 3 s" in (health[name].last_error or "") for name in PLATFORMS)

        trickle.recover(replay.base_url)
        runs = await asyncio.wait_for(tasks.refresh(resources, manual=True), ENDS_WITHIN)
        assert runs == 1  # run now, not folded into a refresh still "running"
        health = await tasks.contest_service(resources).health()
        failing = {name: row.last_error for name, row in health.items() if row.consecutive_failures}
        assert failing == {}
        stored = await tasks.contest_service(resources).upcoming()
        assert {contest.platform for contest in stored} == set(PLATFORMS)


def process_env(tmp_path: Path, base_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    env |= {f"CPSYNC_{name.upper()}_BASE_URL": base_url for name in PLATFORMS}
    env |= {
        "CPSYNC_DATA_DIR": str(tmp_path),
        "CPSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        "CPSYNC_HTTP_MIN_INTERVAL_SECONDS": "0",
        # Every platform on one host, paced like Codeforces' (its bucket).
        "CPSYNC_CODEFORCES_INTERVAL_SECONDS": "0.01",
    }
    return env | {f"CPSYNC_{name.upper()}": value for name, value in settings.items()}


CPSYNC = Path(sys.executable).with_name("cpsync")


def test_cpsync_fetch_ends_at_the_deadline_and_reports_it(
    trickle: TrickleServer, tmp_path: Path
) -> None:
    env = process_env(tmp_path, trickle.base_url, http_deadline_seconds="2")
    fetch = subprocess.run(
        [CPSYNC, "fetch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_ENDS_WITHIN,
        cwd=tmp_path,
    )
    assert fetch.returncode == 1, fetch.stdout + fetch.stderr
    output = " ".join(fetch.stdout.split())  # the table may wrap a long reason
    assert output.count("within 2 s") == len(PLATFORMS), fetch.stdout
    assert "Traceback" not in fetch.stdout + fetch.stderr


def test_cpsync_serve_stops_promptly_on_sigterm_mid_refresh(
    trickle: TrickleServer, tmp_path: Path
) -> None:
    """The deadline is long (300 s): only cancelling the outbound call ends it this soon.
    The refresh is recorded as failed, with why, rather than left "running"."""
    env = process_env(
        tmp_path,
        trickle.base_url,
        http_deadline_seconds="300",
        refresh_interval_minutes="1",  # the embedded scheduler refreshes on its first tick
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [CPSYNC, "serve", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        assert trickle.trickling.wait(PROCESS_ENDS_WITHIN), log.read_text()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with sqlite3.connect(tmp_path / "cpsync.db") as db:
        jobs = db.execute("SELECT kind, state, summary FROM jobs").fetchall()
    assert len(jobs) == 1, jobs
    kind, state, summary = jobs[0]
    assert (kind, state) == ("contests.refresh", "failed")
    assert "cpsync is shutting down" in summary
    assert "Traceback" not in log.read_text()
