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

from cpsync.settings import Settings
from cpsync.web.app import create_app
from cpsync.web.middleware import client_ip, parse_trusted_proxies
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


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Proxies that write the client's port, and IPv6 in brackets
        ("10.0.0.2", ["203.0.113.7:5555"], "203.0.113.7"),
        ("10.0.0.2", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("10.0.0.2", ["2001:db8::7"], "2001:db8::7"),
        ("10.0.0.2", ["6.6.6.6:1, 198.51.100.7:80, 10.0.0.3:9"], "198.51.100.7"),
        ("10.0.0.2:443", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["[2001:db8::7"], "10.0.0.2"),  # broken bracket: garbage
    ],
)
def test_client_ip_with_ports_and_brackets(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_ip(peer, forwarded, parse_trusted_proxies("10.0.0.0/8")) == expected


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
