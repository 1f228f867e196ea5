"""A Redis or PostgreSQL server of the test's own, on a free loopback port, that the test
may kill and start again (outage trials). The machine's shared servers are never touched.

API:

- `own_redis() -> ContextManager[OwnRedis]`: a `redis-server --save ''` started and
  answering PING. `OwnRedis.url` (`redis://127.0.0.1:<port>/0`), `.port`, `.pid`
  (None while down), `.kill()` (SIGKILL by PID, waits for it to exit), `.start()`
  (the same port again, waits for PING), `.running`. Killed at exit.
- `own_postgres() -> ContextManager[OwnPostgres]`: a fresh cluster (`initdb`, trust
  auth, user `postgres`) in a temporary folder owned by the `postgres` OS user (via
  `runuser -u postgres --` when the tests run as root), started and accepting
  connections. `OwnPostgres.url` (`postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres`,
  for `CPSYNC_DATABASE_URL`), `.dsn` (plain `postgresql://...`, for asyncpg/psql), `.port`,
  `.pid` (the postmaster's, None while down), `.stop()` (fast shutdown by PID: SIGINT,
  waits until the postmaster has gone), `.kill()` (immediate shutdown: SIGQUIT),
  `.start()` (same port and data, waits until it accepts connections), `.running`.
  Stopped and its folder removed at exit.

Without the server binaries the test is skipped (failed under `CPSYNC_REQUIRE_SERVICES=1`).
Override where they are with `CPSYNC_TEST_REDIS_SERVER` (the redis-server executable) and
`CPSYNC_TEST_POSTGRES_BIN` (the folder holding initdb, postgres and pg_isready).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from tests.conftest import services_required
from tests.net import free_port

START_TIMEOUT = 60.0  # generous: CI is a loaded 2-core machine
STOP_TIMEOUT = 60.0


class ServiceError(RuntimeError):
    """An own server did not start or stop as asked; the message says why."""


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)  # polls a state change; the deadline is only a safety net


def _missing(reason: str) -> NoReturn:
    """Skip, or fail where CI demands the services (as `tests.conftest.unavailable`)."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


# ---------------------------------------------------------------- Redis


class OwnRedis:
    def __init__(self, executable: str, folder: Path, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._executable = executable
        self._folder = folder
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            raise ServiceError(f"redis-server on port {self.port} is already running")
        log = (self._folder / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait(self._answers, START_TIMEOUT, f"redis-server on port {self.port} did not answer")

    def kill(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            log = (self._folder / "redis.log").read_text(errors="replace")[-2000:]
            raise ServiceError(f"redis-server exited at start:\n{log}")
        client = redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


def _redis_server() -> str | None:
    return os.environ.get("CPSYNC_TEST_REDIS_SERVER") or shutil.which("redis-server")


@contextmanager
def own_redis() -> Iterator[OwnRedis]:
    executable = _redis_server()
    if executable is None:
        _missing("redis-server is not installed (set CPSYNC_TEST_REDIS_SERVER)")
    with tempfile.TemporaryDirectory(prefix="cpsync-redis-") as folder:
        server = OwnRedis(executable, Path(folder), free_port())
        try:
            server.start()
            yield server
        finally:
            server.kill()


# ---------------------------------------------------------------- PostgreSQL


class OwnPostgres:
    def __init__(self, bindir: Path, folder: Path, port: int) -> None:
        self.port = port
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        self._bindir = bindir
        self._folder = folder
        self._data = folder / "data"
        self._log = folder / "postgres.log"
        self._runner: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's PID from its pid file (the runner may be `runuser`)."""
        try:
            first = (self._data / "postmaster.pid").read_text().split("\n", 1)[0]
        except (FileNotFoundError, PermissionError):
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid is not None and _pid_alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def init(self) -> None:
        self._as_postgres(
            [
                str(self._bindir / "initdb"),
                "-D",
                str(self._data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )

    def start(self) -> None:
        if self.running:
            raise ServiceError(f"postgres on port {self.port} is already running")
        command = [
            str(self._bindir / "postgres"),
            "-D",
            str(self._data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self._folder}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        log = self._log.open("ab")
        self._runner = subprocess.Popen(
            _runas_postgres(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        _wait(self._accepting, START_TIMEOUT, f"postgres on port {self.port} did not start")

    def stop(self) -> None:
        """Fast shutdown: connections are ended, the data kept."""
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        """Immediate shutdown, as a crash: recovery runs on the next start."""
        self._signal(signal.SIGQUIT)

    def _signal(self, signum: int) -> None:
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signum)
        _wait(lambda: not _pid_alive(pid), STOP_TIMEOUT, f"postgres {pid} did not stop")
        if self._runner is not None:
            self._runner.wait(timeout=STOP_TIMEOUT)
            self._runner = None

    def _accepting(self) -> bool:
        if self._runner is not None and self._runner.poll() is not None:
            log = self._log.read_text(errors="replace")[-2000:]
            raise ServiceError(f"postgres exited at start:\n{log}")
        probe = subprocess.run(
            [str(self._bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return probe.returncode == 0

    def _as_postgres(self, command: list[str]) -> None:
        done = subprocess.run(_runas_postgres(command), check=False, capture_output=True)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise ServiceError(f"{Path(command[0]).name} failed:\n{output}")


def _runas_postgres(command: list[str]) -> list[str]:
    # The server refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _postgres_bindir() -> Path | None:
    configured = os.environ.get("CPSYNC_TEST_POSTGRES_BIN")
    candidates = [configured] if configured else []

    def version(path: str) -> float:
        with contextlib.suppress(ValueError):
            return float(Path(path).parent.name)
        return 0.0

    candidates += sorted(glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).parent))
    for candidate in candidates:
        folder = Path(candidate)
        if all((folder / name).exists() for name in ("initdb", "postgres", "pg_isready")):
            return folder
    return None


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _postgres_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries not found (set CPSYNC_TEST_POSTGRES_BIN)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no postgres OS user to run the server")
    folder = Path(tempfile.mkdtemp(prefix="cpsync-postgres-"))
    try:
        if os.geteuid() == 0:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        server = OwnPostgres(bindir, folder, free_port())
        server.init()
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
