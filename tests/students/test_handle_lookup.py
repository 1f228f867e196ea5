"""`lookup_users` over the simulated Codeforces: progress after each call, a time budget."""

from __future__ import annotations

import pytest

from cpsync.errors import RetriableError
from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.codeforces_client import OUT_OF_TIME, CodeforcesClient, CodeforcesClientConfig
from cpsync.students.service import UNCHECKED_HANDLE, CodeforcesHandleChecker

from .simulated_codeforces import SimulatedCodeforces, SimUser
from .support import SIM_BASE, CountingThrottle, no_sleep, paced


def simulator(*handles: str) -> SimulatedCodeforces:
    return SimulatedCodeforces([SimUser(h, registered=0, last_online=0) for h in handles])


def client(http: HttpClient) -> CodeforcesClient:
    config = CodeforcesClientConfig(base_url=SIM_BASE)
    return CodeforcesClient(http, config, sleep=no_sleep)


def settings() -> Settings:
    return Settings(_env_file=None, http_max_retries=0, http_min_interval_seconds=0)  # type: ignore[call-arg]


async def test_progress_is_told_after_every_call() -> None:
    sim = simulator("a_1", "b_2", "c_3")
    heard: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        heard.append((done, total))

    async with HttpClient(settings(), transport=sim.transport()) as http:
        lookup = await client(http).lookup_users(
            ["a_1", "ghost_1", "b_2", "ghost_2", "c_3"], progress=progress
        )
    assert lookup.not_found == {"ghost_1", "ghost_2"}
    assert sorted(lookup.found) == ["a_1", "b_2", "c_3"]
    assert heard == [(1, 5), (2, 5), (5, 5)]
    assert sim.calls["user.info"] == 3


async def test_a_spent_budget_leaves_the_rest_unresolved_without_calling() -> None:
    sim = simulator("a_1", "b_2")
    throttle = CountingThrottle()
    pacers = paced(SIM_BASE, throttle)
    async with HttpClient(settings(), transport=sim.transport(), pacers=pacers) as http:
        lookup = await client(http).lookup_users(
            ["ghost_1", "a_1", "ghost_2", "b_2"], keep_going=lambda: throttle.acquired < 2
        )
    assert lookup.not_found == {"ghost_1", "ghost_2"}
    assert lookup.unresolved == {"a_1", "b_2"}
    assert lookup.failures == (OUT_OF_TIME,)
    assert sim.calls["user.info"] == 2


async def test_a_handle_codeforces_could_not_check_is_a_retriable_error() -> None:
    sim = simulator("a_1")
    config = CodeforcesClientConfig(base_url=SIM_BASE, retries=0)
    sim.fail_next("user.info", 503, "Service temporarily unavailable")
    async with HttpClient(settings(), transport=sim.transport()) as http:
        checker = CodeforcesHandleChecker(CodeforcesClient(http, config))
        with pytest.raises(RetriableError) as caught:
            await checker.canonical_handles(["a_1"])
    assert caught.value.message == UNCHECKED_HANDLE
