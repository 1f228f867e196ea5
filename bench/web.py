"""Web throughput: the ICS feed (200 and 304) and the home page, against a constant endpoint.

The real app (`create_app`) runs under uvicorn in a child process on 127.0.0.1, on a SQLite
database seeded through the real repository, merge and account services with 500 upcoming
contests and one user. The same asyncio raw-socket HTTP/1.1 client (keep-alive, fixed
concurrency) measures every case in the same run, bounded in requests and seconds:

    constant   GET /bench/constant, a route this script mounts answering "ok"
    feed 200   GET /feeds/{token}.ics, the full personal calendar
    feed 304   the same with If-None-Match: <its ETag>
    home       GET / with the 500 contests

Each case prints requests per second and p50/p99 latency, and its ratio to the constant
endpoint (rps: higher is better; p99: lower is better). `--json` prints the same figures as
one JSON object.

    .venv/bin/python bench/web.py [--concurrency 16] [--seconds 4] [--max-requests 20000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cpsync.accounts.crypto import load_keyring
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.contests.merge import plan_merge
from cpsync.contests.repository import ContestRepository
from cpsync.db import open_database
from cpsync.platforms.base import ParsedContest
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings

CONTESTS = 500
CONSTANT_PATH = "/bench/constant"


# ---------- the server (child process) ----------


def bench_settings(data_dir: Path, port: int) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'cpsync.db'}",
        "public_url": f"http://127.0.0.1:{port}",
        "refresh_interval_minutes": 0,
        "rate_limit_requests": 1_000_000_000,
        "rate_limit_auth_requests": 1_000_000_000,
        "server_limit_concurrency": 10_000,
        "server_keep_alive_seconds": 60,
        # Nothing leaves the machine, even if something tried to refresh.
        **{f"{name}_base_url": "http://127.0.0.1:9" for name in PLATFORMS},
    }


def serve(settings_values: dict[str, Any], port: int) -> None:
    import uvicorn
    from fastapi.responses import PlainTextResponse

    from cpsync.app import create_app

    settings = Settings(_env_file=None, **settings_values)
    app = create_app(settings)

    async def constant() -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.add_api_route(CONSTANT_PATH, constant, methods=["GET"], include_in_schema=False)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
    )


# ---------- seeding through the real services ----------


def contests(now: datetime) -> dict[str, list[ParsedContest]]:
    by_platform: dict[str, list[ParsedContest]] = {name: [] for name in PLATFORMS}
    names = list(PLATFORMS)
    for index in range(CONTESTS):
        platform = names[index % len(names)]
        start = (now + timedelta(minutes=30 + 41 * index)).replace(second=0, microsecond=0)
        duration = timedelta(minutes=90 + 15 * (index % 8))
        by_platform[platform].append(
            ParsedContest(
                platform,
                f"bench-{index}",
                f"Bench Round {index} (Div. {1 + index % 4})",
                f"https://example.com/{platform}/{index}",
                start,
                start + duration,
                int(duration.total_seconds()),
            )
        )
    return by_platform


async def seed(settings: Settings) -> str:
    """Store the contests and one user; return the user's feed path."""
    now = datetime.now(UTC)
    db = await open_database(settings)
    try:
        async with db.session() as session, session.begin():
            repository = ContestRepository(session)
            for platform, fetched in contests(now).items():
                stored = await repository.stored_for_merge(platform)
                plan = plan_merge(stored, fetched, now, timedelta(hours=3))
                await repository.apply_merge(platform, plan, now)
                health = await repository.health_row(platform)
                health.last_attempt_at = health.last_success_at = now
        async with db.session() as session, session.begin():
            accounts = AccountService(
                session, load_keyring(settings), SessionPolicy.from_settings(settings), lambda: now
            )
            user = await accounts.create_user("bench@example.org", "bench password 123")
            token = accounts.reveal_feed_token(await accounts.feed_token(user))
        return f"/feeds/{token}.ics"
    finally:
        await db.dispose()


# ---------- the load generator ----------


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    expect_status: int = 200


@dataclass
class Figures:
    case: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    bytes_per_response: int
    unexpected_statuses: dict[str, int]
    rps_ratio: float = 1.0
    p99_ratio: float = 1.0


class Connection:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for uvicorn's answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = b""
        return status, headers, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def raw_request(port: int, case: Case) -> bytes:
    lines = [f"GET {case.path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: */*"]
    lines += [f"{key}: {value}" for key, value in case.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def run_case(
    port: int, case: Case, concurrency: int, seconds: float, max_requests: int, warmup: int
) -> Figures:
    request = raw_request(port, case)
    connections = [await Connection.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    sizes: list[int] = []
    errors: dict[int, int] = {}
    budget = {"left": warmup}

    async def worker(connection: Connection, deadline: float, record: bool) -> None:
        while budget["left"] > 0 and time.perf_counter() < deadline:
            budget["left"] -= 1
            began = time.perf_counter()
            status, _, body = await connection.get(request)
            elapsed = time.perf_counter() - began
            if not record:
                continue
            if status != case.expect_status:
                errors[status] = errors.get(status, 0) + 1
            latencies.append(elapsed)
            sizes.append(len(body))

    try:
        await asyncio.gather(*(worker(c, time.perf_counter() + 2, False) for c in connections))
        budget["left"] = max_requests
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(c, deadline, True) for c in connections))
        wall = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    ordered = sorted(latencies)
    return Figures(
        case=case.name,
        requests=len(ordered),
        seconds=round(wall, 3),
        rps=round(len(ordered) / wall, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 3),
        p99_ms=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        bytes_per_response=int(statistics.mean(sizes)) if sizes else 0,
        unexpected_statuses={str(k): v for k, v in sorted(errors.items())},
    )


async def fetch_etag(port: int, path: str) -> str:
    connection = await Connection.open(port)
    try:
        status, headers, body = await connection.get(raw_request(port, Case("probe", path)))
    finally:
        await connection.close()
    if status != 200 or not body.startswith(b"BEGIN:VCALENDAR") or "etag" not in headers:
        raise RuntimeError(f"the feed answered {status} without an ICS body and an ETag")
    return headers["etag"]


async def wait_until_up(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await Connection.open(port)
            try:
                status, _, _ = await connection.get(raw_request(port, Case("up", CONSTANT_PATH)))
            finally:
                await connection.close()
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not come up")
        await asyncio.sleep(0.05)


async def measure(port: int, feed_path: str, args: argparse.Namespace) -> list[Figures]:
    await wait_until_up(port)
    etag = await fetch_etag(port, feed_path)
    cases = [
        Case("constant", CONSTANT_PATH),
        Case("feed 200", feed_path),
        Case("feed 304", feed_path, (("If-None-Match", etag),), expect_status=304),
        Case(f"home ({CONTESTS} contests)", "/"),
    ]
    results = [
        await run_case(port, case, args.concurrency, args.seconds, args.max_requests, args.warmup)
        for case in cases
    ]
    base = results[0]
    for figures in results:
        figures.rps_ratio = round(figures.rps / base.rps, 4)
        figures.p99_ratio = round(figures.p99_ms / base.p99_ms, 2)
    return results


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def print_table(results: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"cpsync web bench: uvicorn (1 process) on 127.0.0.1, SQLite, {CONTESTS} contests; "
        f"concurrency {args.concurrency}, "
        f"up to {args.max_requests} requests or {args.seconds} s per case"
    )
    header = (
        f"{'case':<22}{'requests':>9}{'rps':>10}{'p50 ms':>9}{'p99 ms':>9}{'bytes':>9}"
        f"{'rps/const':>11}{'p99/const':>11}  errors"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        print(
            f"{f.case:<22}{f.requests:>9}{f.rps:>10.1f}{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}"
            f"{f.bytes_per_response:>9}{f.rps_ratio:>11.3f}{f.p99_ratio:>11.2f}  "
            f"{', '.join(f'{n}x HTTP {s}' for s, n in f.unexpected_statuses.items()) or 'none'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0, help="cap per case")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap per case")
    parser.add_argument(
        "--warmup", type=int, default=50, help="requests (at most 2 s) before each case"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cpsync-bench-web-") as folder:
        port = free_port()
        values = bench_settings(Path(folder), port)
        settings = Settings(_env_file=None, **values)
        feed_path = asyncio.run(seed(settings))
        server = multiprocessing.get_context("spawn").Process(
            target=serve, args=(values, port), name="cpsync-bench-server", daemon=True
        )
        server.start()
        try:
            results = asyncio.run(measure(port, feed_path, args))
        finally:
            server.terminate()
            server.join(timeout=10)
            if server.is_alive():
                server.kill()
                server.join()

    if args.json:
        summary = {
            "contests": CONTESTS,
            "concurrency": args.concurrency,
            "seconds_cap": args.seconds,
            "max_requests": args.max_requests,
            "cases": {f.case: asdict(f) for f in results},
        }
        print(json.dumps(summary))
    else:
        print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
