"""Scaled mode: "Sync all" is a `students.sync` task on the Redis broker, so the sync
survives the web process that was asked for it.

A real `cpsync serve` process and a real `cpsync worker` process share PostgreSQL and
Redis; Codeforces is the simulator served over HTTP. The web process is killed right
after it answers the POST, before any worker runs; the worker started afterwards
completes the sync.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from cpsync.accounts.crypto import generate_key_spec
from cpsync.accounts.models import Role
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SessionPolicy
from cpsync.db import Base
from cpsync.resources import Resources, open_resources
from cpsync.settings import Settings
from cpsync.students.models import Student, StudentSyncRun
from tests.conftest import REPO_ROOT
from tests.net import free_port
from tests.waiting import wait_until

from .simulated_codeforces import IdSource, SimulatedCodeforces, generate_user, serve_http
from .support import add_student

PASSWORD = "correct horse battery"
HANDLES = ("tourist", "Petr", "jiangly")
CLI = "from cpsync.cli import app; app()"

pytestmark = pytest.mark.services


@pytest.fixture
def codeforces() -> Iterator[tuple[SimulatedCodeforces, str]]:
    sim = SimulatedCodeforces()
    rng, ids, now = random.Random(9), IdSource(), int(time.time())
    for handle in HANDLES:
        sim.add(generate_user(rng, ids, handle, submissions=20, now=now, problems=sim.problems))
    with serve_http(sim) as url:
        yield sim, url


@pytest.fixture
def env(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    codeforces: tuple[SimulatedCodeforces, str],
) -> dict[str, str]:
    return dict(
        os.environ,
        CPSYNC_DATA_DIR=str(tmp_path),
        CPSYNC_DATABASE_URL=postgres_url,
        CPSYNC_CACHE_URL=redis_url,
        CPSYNC_BROKER_URL=redis_url,
        CPSYNC_QUEUE_NAME=queue_name,
        CPSYNC_ENCRYPTION_KEYS=generate_key_spec("test"),
        CPSYNC_SECRET_KEY="a-test-secret-key-that-is-long-enough-0123456789",
        CPSYNC_CODEFORCES_BASE_URL=codeforces[1],
        CPSYNC_CODEFORCES_INTERVAL_SECONDS="0.01",
        CPSYNC_REFRESH_INTERVAL_MINUTES="0",
    )


def settings_of(env: dict[str, str]) -> Settings:
    names = {key.removeprefix("CPSYNC_").lower(): value for key, value in env.items()}
    return Settings.model_validate({k: v for k, v in names.items() if k in Settings.model_fields})


async def seed(resources: Resources) -> int:
    """An emptied database with a coach who has three students."""
    async with resources.db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())
    async with resources.db.session() as session, session.begin():
        policy = SessionPolicy.from_settings(resources.settings)
        accounts = AccountService(session, resources.keyring, policy, resources.clock)
        coach = await accounts.create_user("coach@example.com", PASSWORD, Role.COACH)
    for handle in HANDLES:
        await add_student(resources.db, coach.id, handle, created_at=datetime.now(UTC))
    return coach.id


async def finished_runs(resources: Resources) -> list[StudentSyncRun]:
    async with resources.db.session() as session:
        runs = await session.scalars(
            select(StudentSyncRun).where(StudentSyncRun.trigger == "sync_all")
        )
        return [run for run in runs if run.state != "running"]


async def synced_students(resources: Resources) -> int:
    async with resources.db.session() as session:
        students = await session.scalars(select(Student))
        return sum(1 for student in students if student.last_synced_at is not None)


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def serving(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def test_sync_all_completes_on_a_worker_after_the_web_process_died(
    env: dict[str, str], codeforces: tuple[SimulatedCodeforces, str]
) -> None:
    sim, _url = codeforces
    settings = settings_of(env)
    async with open_resources(settings) as resources:
        await seed(resources)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = start(env, "serve", "--port", str(port))
        worker: subprocess.Popen[bytes] | None = None
        try:
            assert wait_until(lambda: serving(base), 60), "cpsync serve did not start"
            with httpx.Client(base_url=base, timeout=10) as browser:
                page = browser.get("/signin")
                token = _csrf(page)
                signed = browser.post(
                    "/signin",
                    data={"email": "coach@example.com", "password": PASSWORD, "csrf_token": token},
                )
                assert signed.status_code == 303
                token = _csrf(browser.get("/students"))
                answer = browser.post("/students/sync", data={"csrf_token": token})
            kill(web)  # right after the answer: the web process never runs the sync
            assert answer.status_code == 303
            assert await finished_runs(resources) == []
            assert sim.total_calls == 0

            worker = start(env, "worker")
            for _ in range(600):  # up to a minute on a loaded machine
                if await finished_runs(resources):
                    break
                await asyncio.sleep(0.1)
            (run,) = await finished_runs(resources)
            assert run.state == "done", run.error
            assert await synced_students(resources) == len(HANDLES)
            assert sim.total_calls > 0
        finally:
            kill(web)
            if worker is not None:
                kill(worker)


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    assert match, f"no csrf token on {page.url}: {page.status_code}"
    return match.group(1)
