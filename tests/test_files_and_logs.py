"""What the process leaves readable: the data folder and SQLite files are the owner's
only, and log lines (uvicorn's access log too) carry no credentials or feed tokens."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from uvicorn.logging import AccessFormatter

from cpsync.db import open_database
from cpsync.redaction import install_log_redaction, redact, split_userinfo
from cpsync.settings import Settings
from tests.net import free_port

FEED_TOKEN = "Zq9-feed-token-for-the-log-test"
RESET_TOKEN = "reset-token-for-the-log-test"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    return env | {"CPSYNC_DATA_DIR": str(data_dir), "CPSYNC_REFRESH_INTERVAL_MINUTES": "0"}


def _usual_umask() -> None:
    # The common default, under which files are created group- and world-readable.
    os.umask(0o022)


def test_migrate_creates_the_data_folder_and_database_for_the_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "cpsync"
    script = Path(sys.executable).with_name("cpsync")
    done = subprocess.run(
        [script, "migrate"],
        env=_environment(data_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_usual_umask,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "cpsync.db") == 0o600
    assert _mode(data_dir / "secret.key") == 0o600


async def test_the_sqlite_wal_and_shm_files_are_the_owners_only(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    previous = os.umask(0o022)
    try:
        database = await open_database(settings)
        try:
            async with database.session() as session, session.begin():
                await session.execute(text("CREATE TABLE probe (id INTEGER)"))
            files = sorted(p.name for p in (tmp_path / "data").iterdir())
            assert files == ["cpsync.db", "cpsync.db-shm", "cpsync.db-wal"]
            assert {name: _mode(tmp_path / "data" / name) for name in files} == dict.fromkeys(
                files, 0o600
            )
        finally:
            await database.dispose()
    finally:
        os.umask(previous)


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("GET /feeds/Ab_c-1.ics HTTP/1.1", "GET /feeds/***.ics HTTP/1.1"),
        ("webcal://cp.example/feeds/Ab_c-1.ics", "webcal://cp.example/feeds/***.ics"),
        ("PUT http://alice:S3cretAppPw@dav/alice/c/", "PUT http://***@dav/alice/c/"),
        ("postgresql://cp:pw@db:5432/cp", "postgresql://***@db:5432/cp"),
        ("/signin/reset?token=abc&next=/x", "/signin/reset?token=***&next=/x"),
        ("/cb?state=s1&code=c2", "/cb?state=***&code=***"),
        ("https://h/x?api_key=k&page=2#top", "https://h/x?api_key=***&page=2#top"),
        ("mail ann@example.org about /contests/cf/2050.ics", None),
    ],
)
def test_redact_masks_credentials_secret_parameters_and_feed_tokens(
    line: str, masked: str | None
) -> None:
    assert redact(line) == (masked or line)


def test_split_userinfo_takes_the_credentials_out_of_the_address() -> None:
    assert split_userinfo("https://alice:p%40ss@dav.example/a/?x=1") == (
        "https://dav.example/a/?x=1",
        "alice",
        "p@ss",
    )
    assert split_userinfo("https://alice@dav.example/a/") == (
        "https://dav.example/a/",
        "alice",
        None,
    )
    assert split_userinfo("https://dav.example/a/") == ("https://dav.example/a/", None, None)


def test_an_access_record_keeps_its_shape_for_uvicorns_formatter() -> None:
    install_log_redaction()
    logger = logging.getLogger("uvicorn.access")
    path = f"/feeds/{FEED_TOKEN}.ics?token={RESET_TOKEN}"
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 404),
        None,
    )
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert line == '127.0.0.1:5000 - "GET /feeds/***.ics?token=*** HTTP/1.1" 404 Not Found'


def test_an_exception_logged_with_a_url_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    try:
        raise ConnectionError("cannot reach http://alice:S3cretAppPw@dav.example/")
    except ConnectionError:
        logging.getLogger("cpsync.test").exception("sync of %s", "http://bob:pw2@h/")
    assert "S3cretAppPw" not in caplog.text
    assert "pw2" not in caplog.text
    assert "http://***@dav.example/" in caplog.text


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`cpsync serve` as a real process (uvicorn's own logging); its output in a file."""
    port = free_port()
    log = tmp_path / "serve.log"
    script = Path(sys.executable).with_name("cpsync")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [script, "serve", "--port", str(port)],
            env=_environment(tmp_path / "data"),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # Generous: the command alone takes 20 s to import on a loaded 2-core machine.
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"cpsync serve did not start: {log.read_text()}") from None
                time.sleep(0.05)  # polling for the listening socket, not timing anything
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_real_access_log_carries_no_feed_or_reset_token(served: tuple[str, Path]) -> None:
    base, log = served
    feed = httpx.get(f"{base}/feeds/{FEED_TOKEN}.ics", timeout=30)
    reset = httpx.get(f"{base}/signin/reset?token={RESET_TOKEN}", timeout=30)
    assert feed.status_code == 404
    assert reset.status_code < 500
    deadline = time.monotonic() + 60
    while "/signin/reset" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for uvicorn to write the line, not timing anything
    written = log.read_text()
    assert '"GET /feeds/***.ics HTTP/1.1" 404' in written
    assert "/signin/reset?token=***" in written
    assert FEED_TOKEN not in written
    assert RESET_TOKEN not in written
