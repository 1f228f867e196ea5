"""Tasks for the broker tests, run by real `taskiq worker` processes.

Each task appends a line to a file, so the test can see what ran, how often, and where.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from cpsync.queue import make_broker
from cpsync.settings import Settings

broker = make_broker(Settings())
# How often a held task looks for the test's go-ahead file: another process's event.
POLL_SECONDS = 0.05


@broker.task(task_name="test.record")
async def record(path: str, value: str, seconds: float = 0.0) -> None:
    started = Path(path + ".started")
    with started.open("a") as marks:
        marks.write(f"{value} {os.getpid()}\n")
    await asyncio.sleep(seconds)
    with Path(path).open("a") as done:
        done.write(f"{value} {os.getpid()}\n")


@broker.task(task_name="test.hold")
async def hold(path: str, value: str) -> None:
    """Runs until the test creates `<path>.release`, however long that takes."""
    with Path(path + ".started").open("a") as marks:
        marks.write(f"{value} {os.getpid()}\n")
    release = Path(path + ".release")
    while not release.exists():
        await asyncio.sleep(POLL_SECONDS)
    with Path(path).open("a") as done:
        done.write(f"{value} {os.getpid()}\n")
