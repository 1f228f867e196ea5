"""Idle and trickling connections cannot deny service (issue 14, item 2).

The tests talk raw TCP to real `cpsync serve` processes from several loopback source
addresses (127.0.0.0/8 is all local), each address its own client; tests sharing a
server use addresses of their own.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.net import free_port

PATIENCE = 60.0  # seconds; far above any timeout under test, for a loaded CI machine
STARTUP = 180.0  # seconds; a server process starting while others run the suite


@contextmanager
def served(tmp_path: Path, **settings: str) -> Iterator[int]:
    """`cpsync serve` on a free port with these settings (`CPSYNC_*`); yields the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    env |= {
        "CPSYNC_DATA_DIR": str(tmp_path),
        "CPSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        "CPSYNC_REFRESH_INTERVAL_MINUTES": "0",
    }
    env |= {f"CPSYNC_{name.upper()}": value for name, value in settings.items()}
    log = tmp_path / "serve.log"
    # The port is free when chosen, but another process may take it while this one
    # starts (seconds on a loaded machine): then start again on another.
    for _ in range(3):
        port = free_port()
        with log.open("wb") as output:
            process = subprocess.Popen(
                [Path(sys.executable).with_name("cpsync"), "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            if _came_up(process, port):
                yield port
                return
        finally:
            process.terminate()
            process.wait(timeout=30)
        if "address already in use" not in log.read_text():
            break
    raise RuntimeError(f"cpsync serve did not start: {log.read_text()}")


def _came_up(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + STARTUP
    while _status_or_none(port, "127.0.0.1") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling for the server to come up, not timing anything
    return True


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Timeouts that outlast the tests; four connections per client, proxies aside; three
    requests in flight."""
    settings = {
        "server_max_connections_per_client": "4",
        "server_header_timeout_seconds": "600",
        "server_body_timeout_seconds": "600",
        "server_keep_alive_seconds": "600",
        "server_limit_concurrency": "3",
        "trusted_proxies": "127.0.3.0/24",
    }
    with served(tmp_path_factory.mktemp("patient"), **settings) as port:
        yield port


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One second for a request's headers, one for its body.

    Keep-alive outlasts the tests, so only those timeouts close connections.
    """
    settings = {
        "server_header_timeout_seconds": "1",
        "server_body_timeout_seconds": "1",
        "server_keep_alive_seconds": "600",
    }
    with served(tmp_path_factory.mktemp("strict"), **settings) as port:
        yield port


def _status_or_none(port: int, source: str) -> int | None:
    try:
        return healthz(port, source)
    except OSError:
        return None


def healthz(port: int, source: str = "127.0.0.1") -> int:
    """GET /healthz on a new connection from `source`; the status."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=PATIENCE, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), PATIENCE, (source, 0))


def still_open(sock: socket.socket) -> bool:
    """Nothing received and no end of stream: the server is holding the connection."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def received_until_closed(sock: socket.socket) -> bytes:
    """Every byte the server sends until it closes the connection (fails past PATIENCE)."""
    received = b""
    deadline = time.monotonic() + PATIENCE
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
    raise AssertionError(f"the server kept the connection open; it sent {received!r}")


def test_hundreds_of_idle_connections_leave_the_site_up(patient: int) -> None:
    with ExitStack() as stack:
        # 256 connections that send nothing, four (the cap) from each of 64 addresses.
        idle = [
            stack.enter_context(connect(patient, f"127.0.1.{number // 4}")) for number in range(256)
        ]
        assert [healthz(patient, "127.0.0.1") for _ in range(3)] == [200, 200, 200]
        assert all(still_open(sock) for sock in idle)


def test_a_client_over_its_connection_cap_is_refused_while_others_are_served(
    patient: int,
) -> None:
    with ExitStack() as stack:
        held: list[http.client.HTTPConnection] = []
        for _ in range(4):
            # A completed request shows the server has counted the connection.
            connection = http.client.HTTPConnection(
                "127.0.0.1", patient, timeout=PATIENCE, source_address=("127.0.0.2", 0)
            )
            stack.callback(connection.close)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            held.append(connection)

        with connect(patient, "127.0.0.2") as fifth:
            assert received_until_closed(fifth) == b""  # at once, long before any timeout
        assert healthz(patient, "127.0.0.3") == 200

        held.pop().close()
        deadline = time.monotonic() + PATIENCE
        while _status_or_none(patient, "127.0.0.2") != 200:  # the server sees the close soon
            assert time.monotonic() < deadline, "127.0.0.2 stayed refused after closing one"
            time.sleep(0.05)


def test_a_trusted_proxy_is_not_capped(patient: int) -> None:
    # All of a proxy's clients share its address; it caps each of them itself.
    with ExitStack() as stack:
        for _ in range(5):
            connection = http.client.HTTPConnection(
                "127.0.0.1", patient, timeout=PATIENCE, source_address=("127.0.3.1", 0)
            )
            stack.callback(connection.close)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200


def test_headers_sent_in_pieces_within_the_timeout_are_served(patient: int) -> None:
    with connect(patient, "127.0.0.4") as sock:
        for piece in (
            b"GET /healthz HTTP/1.1\r\n",
            b"Host: localhost\r\n",
            b"Connection: close\r\n",
        ):
            sock.sendall(piece)
        sock.sendall(b"\r\n")
        assert received_until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_trickled_headers_are_cut_off_at_the_header_timeout(strict: int) -> None:
    with ExitStack() as stack:
        fresh = [stack.enter_context(connect(strict, "127.0.0.5")) for _ in range(20)]
        # One connection trickles after a complete exchange: the next request's headers
        # are due within the timeout of the previous response's end.
        reused = http.client.HTTPConnection(
            "127.0.0.1", strict, timeout=PATIENCE, source_address=("127.0.0.6", 0)
        )
        stack.callback(reused.close)
        reused.request("GET", "/healthz")
        first = reused.getresponse()
        first.read()
        assert first.status == 200
        assert reused.sock is not None
        tricklers = [*fresh, reused.sock]
        for sock in tricklers:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")

        closed = trickle_until_closed(tricklers)

        assert closed == dict.fromkeys(tricklers, b"")  # closed without an answer
        assert healthz(strict, "127.0.0.5") == 200


def trickle_until_closed(
    socks: list[socket.socket], drip: bytes = b"X-Drip: 1\r\n"
) -> dict[socket.socket, bytes]:
    """Send `drip` on each socket every tenth of a second until the server closes each."""
    closed: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + PATIENCE
    while len(closed) < len(socks) and time.monotonic() < deadline:
        open_socks = [sock for sock in socks if sock not in closed]
        readable, _, _ = select.select(open_socks, [], [], 0.1)  # the trickle's pace
        for sock in readable:
            closed[sock] = received_until_closed(sock)
        for sock in open_socks:
            if sock not in closed:
                try:
                    sock.sendall(drip)
                except OSError:
                    closed[sock] = received_until_closed(sock)
    return closed


def test_a_trickled_body_is_cut_off_at_the_body_timeout(strict: int) -> None:
    with connect(strict, "127.0.0.9") as sock:
        sock.sendall(STALLED_POST)
        closed = trickle_until_closed([sock], b"e")
        assert closed == {sock: b""}
        assert healthz(strict, "127.0.0.9") == 200


STALLED_POST = (
    b"POST /signin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
)


def test_requests_in_flight_beyond_the_limit_get_503(patient: int) -> None:
    with ExitStack() as stack:
        # Form posts whose bodies have not come stay in flight. With `Expect: 100-continue`
        # the server says when each is running and waiting for its body.
        stalled = [stack.enter_context(connect(patient, "127.0.0.7")) for _ in range(3)]
        for sock in stalled:
            sock.sendall(STALLED_POST.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
            assert received_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"

        assert healthz(patient, "127.0.0.8") == 503

        for sock in stalled:
            sock.sendall(b"email=" + b"a" * 994)  # the rest of the promised 1000 bytes
            answer = received_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 ")
            assert not answer.startswith(b"HTTP/1.1 503 ")
        deadline = time.monotonic() + PATIENCE
        while healthz(patient, "127.0.0.8") != 200:  # finished requests leave the count
            assert time.monotonic() < deadline, "the finished requests still counted"
            time.sleep(0.05)


def received_until(sock: socket.socket, marker: bytes) -> bytes:
    """Bytes from the server up to and including the first `marker`."""
    received = b""
    sock.settimeout(PATIENCE)
    while marker not in received:
        chunk = sock.recv(1)  # byte by byte: nothing past the marker is consumed
        assert chunk, f"the server closed the connection after {received!r}"
        received += chunk
    return received
