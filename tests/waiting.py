"""Waiting on a state change that another process makes (a worker, a server)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, poll: float = 0.1) -> bool:
    """Poll `predicate` until it holds; False once `timeout` passed without it. The poll
    watches for the change; the timeout is only a safety net for a change that never comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())
