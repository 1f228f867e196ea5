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


@broker.task(task_name="test.record")
async def record(path: str, value: str, seconds: float = 0.0) -> None:
    started = Path(path + ".started")
    with started.open("a") as marks:
        marks.write(f"{value} {os.getpid()}\n")
    await asyncio.sleep(seconds)
    with Path(path).open("a") as done:
        done.write(f"{value} {os.getpid()}\n")
