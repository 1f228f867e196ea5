"""A task that fails a given number of times, for the delayed-retry tests.

Each attempt appends the monotonic time it started and the delay its message asked for,
so a test can compare the gaps between attempts with the delays that were planned.
"""

from __future__ import annotations

import time
from pathlib import Path

from taskiq import AsyncBroker, Context, TaskiqDepends

from cpsync.queue import delay_of, make_broker
from cpsync.settings import Settings

FLAKY = "test.flaky"
# taskiq fills a parameter whose default is this with the message's context.
CONTEXT: Context = TaskiqDepends()


class PlannedFailureError(RuntimeError):
    pass


def register(broker: AsyncBroker) -> None:
    @broker.task(task_name=FLAKY)
    async def flaky(path: str, failures: int, context: Context = CONTEXT) -> None:
        attempts = Path(path)
        with attempts.open("a") as marks:
            marks.write(f"{time.monotonic()} {delay_of(context.message.labels)}\n")
        if len(attempts.read_text().splitlines()) <= failures:
            raise PlannedFailureError("failing on purpose")


def attempts(path: Path) -> list[tuple[float, float]]:
    """(monotonic start, planned delay) of each attempt so far."""
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(float(at), float(delay)) for at, delay in rows]


broker = make_broker(Settings())
register(broker)
