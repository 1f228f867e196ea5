"""Behind proxies that write ports, oversized request lines and chunked bodies (issue 8, #16)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from cpsync.app import create_app
from cpsync.settings import Settings
from cpsync.web.middleware import trusted_hosts
from tests.net import free_port
from tests.recordings import MutableClock
from tests.web.conftest import csrf_of, make_client


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # Nothing here depends on the database engine.
    return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"


@pytest.fixture
async def limited_app(
    database, web_settings: Settings, clock: MutableClock
) -> AsyncIterator[FastAPI]:
    settings = web_settings.model_copy(
        update={
            "rate_limit_requests": 50,
            "rate_limit_auth_requests": 2,
            "trusted_proxies": "10.0.0.0/8",
            "max_body_bytes": 2048,
        }
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def client_seen(peer: str, forwarded: list[str], trusted: str) -> str:
    """The client address the app's routes and rate limits see, with the proxy
    middleware configured as app.py does."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["client"][0])

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted_hosts(trusted))
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope = {"type": "http", "client": (peer, 40000), "headers": headers}

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    async def ignore(message: Message) -> None:
        return None

    await middleware(scope, nothing, ignore)  # type: ignore[arg-type]
    return seen[0]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", ["1.2.3.4"], "", "203.0.113.9"),  # no proxies trusted: header ignored
        ("203.0.113.9", ["1.2.3.4"], "10.0.0.0/8", "203.0.113.9"),  # peer is not a proxy
        ("10.0.0.2", ["198.51.100.7"], "10.0.0.0/8", "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], "10.0.0.0/8", "198.51.100.7"),  # spoofed left part
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7, 10.0.0.3"], "10.0.0.0/8", "198.51.100.7"),
        ("10.0.0.2", ["10.0.0.5"], "10.0.0.0/8", "10.0.0.5"),  # all hops trusted
        ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
        ("2001:db8::1", ["2001:db8::99"], "2001:db8::1", "2001:db8::99"),
        ("2001:db8::1", ["[2001:db8::99]"], "2001:db8::1/128", "2001:db8::99"),
        # Proxies that write the client's port, and IPv6 in brackets
        ("10.0.0.2", ["203.0.113.7:5555"], "10.0.0.0/8", "203.0.113.7"),
        ("10.0.0.2", ["[2001:db8::7]:443"], "10.0.0.0/8", "2001:db8::7"),
        ("10.0.0.2", ["2001:db8::7"], "10.0.0.0/8", "2001:db8::7"),
        ("10.0.0.2", ["6.6.6.6:1, 198.51.100.7:80, 10.0.0.3:9"], "10.0.0.0/8", "198.51.100.7"),
    ],
)
async def test_the_client_is_the_rightmost_untrusted_hop(
    peer: str, forwarded: list[str], trusted: str, expected: str
) -> None:
    assert await client_seen(peer, forwarded, trusted) == expected


def test_a_trusted_proxy_list_with_a_typo_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        trusted_hosts("10.0.0.0/8, 10.0.0.300")


async def test_behind_a_proxy_that_writes_ports_each_client_keeps_its_sign_in_budget(
    limited_app: FastAPI,
) -> None:
    clients = ["203.0.113.7:5555", "[2001:db8::abcd]:443", "2001:db8::beef", "198.51.100.9:1"]
    async with make_client(limited_app, ip="10.0.0.2") as proxy:
        token = csrf_of(await proxy.get("/signin"))
        form = {"email": "a@b.co", "password": "wrong", "csrf_token": token}

        async def sign_in_from(client: str) -> int:
            headers = {"x-forwarded-for": client}
            return (await proxy.post("/signin", data=form, headers=headers)).status_code

        # The first client spends its budget of two and is locked out...
        assert [await sign_in_from(clients[0]) for _ in range(3)] == [401, 401, 429]
        # ...while every other client, same proxy, still has its own.
        for other in clients[1:]:
            assert await sign_in_from(other) == 401
        # A different port of the same address is the same client.
        assert await sign_in_from("203.0.113.7:6000") == 429


async def test_chunked_oversized_body_is_413_before_the_csrf_check(limited_app: FastAPI) -> None:
    """No CSRF token and a body the CSRF check never reads: the size still decides first."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 500

    async with make_client(limited_app) as http:
        await http.get("/signin")  # a presession cookie, so only the token is missing
        answer = await http.post(
            "/signout", content=chunks(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413
        assert answer.json() == {"detail": "Request body too large."}
        small = await http.post(
            "/signout", content=b"{}", headers={"content-type": "application/json"}
        )
        assert small.status_code == 403


async def test_an_oversized_request_target_is_414(limited_app: FastAPI) -> None:
    async with make_client(limited_app) as http:
        assert (await http.get("/?q=" + "a" * 60_000)).status_code == 414
        assert (await http.get("/" + "a" * 9_000)).status_code == 414
        assert (await http.get("/healthz?q=" + "a" * 7_000)).status_code == 200


def _status_of_raw_request(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        status_line = connection.makefile("rb").readline()
    return int(status_line.split()[1])


@pytest.fixture
def served_port(tmp_path: Path) -> Iterator[int]:
    """`cpsync serve` as a real process with its real uvicorn settings."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    env |= {
        "CPSYNC_DATA_DIR": str(tmp_path),
        "CPSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        "CPSYNC_REFRESH_INTERVAL_MINUTES": "0",
    }
    script = Path(sys.executable).with_name("cpsync")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [script, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"cpsync serve did not start: {log.read_text()}") from None
                time.sleep(0.05)  # polling for the listening socket, not timing anything
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_real_server_refuses_a_70_kb_request_line(served_port: int) -> None:
    line = b"GET /?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    # 414 from cpsync when the line arrives in one read; 400 from uvicorn's own buffer cap
    # when it arrives in pieces. Either way the request never reaches a route.
    assert _status_of_raw_request(served_port, line) in (400, 414)
    over_cap = b"GET /?q=" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    assert _status_of_raw_request(served_port, over_cap) == 414
    fine = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    assert _status_of_raw_request(served_port, fine) == 200
