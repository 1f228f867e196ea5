"""The Codeforces client over the real HttpClient against the local replay server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cpsync.http import HttpClient
from cpsync.settings import Settings
from cpsync.students.codeforces_api import (
    CallLimitError,
    CodeforcesFailedError,
    CodeforcesPermanentError,
    CodeforcesUnavailableError,
    HandleNotFoundError,
    UnreadableAnswerError,
    user_info_url,
)
from cpsync.students.codeforces_client import CodeforcesClient, CodeforcesClientConfig
from tests.replay import ReplayServer, Reply, replay_server

from .conftest import OWN, read_cassette, recording
from .support import CountingThrottle, paced

# No default pacing: each test's Codeforces host is paced by its counting throttle.
UNPACED = Settings(_env_file=None, http_min_interval_seconds=0)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def envelope(result: Any) -> Reply:
    return Reply(body=json.dumps({"status": "OK", "result": result}).encode())


def failed(comment: str, status: int = 400) -> Reply:
    return Reply(status, json.dumps({"status": "FAILED", "comment": comment}).encode())


def user(handle: str, rating: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "handle": handle,
        "lastOnlineTimeSeconds": 1_700_000_000,
        "registrationTimeSeconds": 1_600_000_000,
    }
    if rating is not None:
        item.update(rating=rating, maxRating=rating, rank="expert", maxRank="expert")
    return item


def serve(server: ReplayServer, target: str, *replies: Reply) -> None:
    server.routes[("GET", target)] = list(replies)


def targets(server: ReplayServer) -> list[str]:
    return [target for _, target, _, _ in server.requests]


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with replay_server() as replay:
        yield replay


@pytest.fixture
def throttle() -> CountingThrottle:
    return CountingThrottle()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def client(
    server: ReplayServer, throttle: CountingThrottle, sleep: RecordingSleep
) -> AsyncIterator[CodeforcesClient]:
    settings = Settings(
        _env_file=None,
        http_timeout_seconds=2,
        http_max_retries=1,
        http_backoff_seconds=0.01,
        http_max_retry_after_seconds=0.05,
        http_min_interval_seconds=0,
    )
    async with HttpClient(settings, pacers=paced(server.base_url, throttle)) as http:
        config = CodeforcesClientConfig(base_url=server.base_url)
        yield CodeforcesClient(http, config, sleep=sleep)


async def test_user_info_recording_at_the_real_path(
    client: CodeforcesClient, server: ReplayServer, throttle: CountingThrottle
) -> None:
    path = recording("user-info-Sehnsucht-protocol-relative-avatar-2019-izaron.json")
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=Sehnsucht", Reply.file(path))

    (info,) = await client.user_info(["Sehnsucht"])

    assert (info.handle, info.rating) == ("Sehnsucht", 2176)
    assert throttle.acquired == 1


async def test_user_info_keeps_request_order_and_duplicates(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    # The recorder kept only the result array; the real answer wraps it in an envelope.
    items = json.loads(recording("user-info-multi-ru-locale-2024-10-timurxboy.json").read_bytes())
    serve(
        server, "/api/user.info?checkHistoricHandles=true&handles=tourist;jiangly", envelope(items)
    )

    infos = await client.user_info(["tourist", "jiangly", "TOURIST"])

    assert [info.handle for info in infos] == ["tourist", "jiangly", "tourist"]
    assert infos[1].rank == "легендарный гроссмейстер"
    assert len(server.requests) == 1  # the duplicate was not asked for twice


async def test_renamed_handle_resolves_to_the_new_one(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    # checkHistoricHandles=true: asking for the old handle answers with the new one.
    serve(
        server,
        "/api/user.info?checkHistoricHandles=true&handles=old_name;kept",
        envelope([user("NewName", 1500), user("kept")]),
    )

    lookup = await client.lookup_users(["old_name", "kept"])

    assert lookup.get("OLD_NAME") is not None
    assert lookup.get("old_name").handle == "NewName"  # type: ignore[union-attr]
    assert lookup.get("kept").rating is None  # type: ignore[union-attr]
    assert lookup.not_found == frozenset()


async def test_answer_out_of_order_is_refused(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(
        server,
        "/api/user.info?checkHistoricHandles=true&handles=a_1;b_2",
        envelope([user("b_2"), user("a_1")]),
    )
    with pytest.raises(UnreadableAnswerError, match="out of order"):
        await client.user_info(["a_1", "b_2"])


async def test_answer_with_missing_users_is_refused(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(
        server, "/api/user.info?checkHistoricHandles=true&handles=a_1;b_2", envelope([user("a_1")])
    )
    with pytest.raises(UnreadableAnswerError, match="1 users for 2 handles"):
        await client.user_info(["a_1", "b_2"])


async def test_many_handles_are_split_by_url_length(
    client: CodeforcesClient, server: ReplayServer, throttle: CountingThrottle
) -> None:
    handles = [f"student_{n:04d}" for n in range(400)]  # 400 x 13 characters > 2,000
    batches: list[list[str]] = []
    start = 0
    while start < len(handles):
        end = start + 1
        while (
            end < len(handles)
            and len(user_info_url(server.base_url, handles[start : end + 1])) <= 2000
        ):
            end += 1
        batches.append(handles[start:end])
        start = end
    for batch in batches:
        serve(server, user_info_url("", batch), envelope([user(h) for h in batch]))

    infos = await client.user_info(handles)

    assert [info.handle for info in infos] == handles
    assert len(batches) >= 3
    assert throttle.acquired == len(server.requests) == len(batches)
    assert all(len(server.base_url + target) <= 2000 for target in targets(server))


async def test_user_rating_from_cassette_at_its_recorded_uri(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    cassette = read_cassette(
        recording("vcr-user-rating-Fefer_Ivan-2015-12-29-codeforces-api-rb.yml")
    )
    serve(server, cassette.uri.removeprefix("http://codeforces.com"), Reply(body=cassette.body))

    changes = await client.user_rating("Fefer_Ivan")

    assert len(changes) == 73
    assert (changes[0].contest_id, changes[0].old_rating, changes[0].new_rating) == (1, 1500, 1502)


async def test_user_status_from_cassette_at_its_recorded_uri(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    # The recorded request is `count=50&from=1&handle=Fefer_Ivan`: our URL matches it exactly.
    cassette = read_cassette(
        recording("vcr-user-status-Fefer_Ivan-count50-2015-12-codeforces-api-rb.yml")
    )
    serve(server, cassette.uri.removeprefix("http://codeforces.com"), Reply(body=cassette.body))

    submissions = await client.user_status("Fefer_Ivan", 1, 50)

    assert len(submissions) == 50
    assert submissions[0].id == 13004518


async def test_handle_starting_with_a_dash(client: CodeforcesClient, server: ReplayServer) -> None:
    path = recording("user-rating-result-Absam-2025-05-cftracker.json")
    serve(server, "/api/user.rating?handle=-Absam-", Reply.file(path))
    assert len(await client.user_rating("-Absam-")) == 107


async def test_problemset_problems(client: CodeforcesClient, server: ReplayServer) -> None:
    serve(server, "/api/problemset.problems", Reply.file(OWN / "problemset-problems-handmade.json"))
    catalogue = await client.problemset_problems()
    assert (len(catalogue.problems), catalogue.skipped) == (5, 1)


async def test_503_overload_is_retried_through_the_throttle_then_given_up(
    client: CodeforcesClient,
    server: ReplayServer,
    throttle: CountingThrottle,
    sleep: RecordingSleep,
) -> None:
    overloaded = Reply(503, b"<html>overloaded</html>", headers={"Retry-After": "40"})
    serve(server, "/api/user.rating?handle=tourist", overloaded)

    with pytest.raises(CodeforcesUnavailableError) as caught:
        await client.user_rating("tourist")

    assert (caught.value.upstream_status, caught.value.retry_after) == (503, 40.0)
    # One attempt and two retries (the default), each waiting Retry-After and the throttle.
    assert len(server.requests) == throttle.acquired == 3
    assert sleep.delays == [40.0, 40.0]


async def test_503_then_ok_succeeds(
    client: CodeforcesClient, server: ReplayServer, sleep: RecordingSleep
) -> None:
    serve(server, "/api/user.rating?handle=tourist", Reply(503), envelope([]))
    assert await client.user_rating("tourist") == []
    assert sleep.delays == [10.0]  # no Retry-After: the default pause


async def test_retry_after_is_capped(
    server: ReplayServer, throttle: CountingThrottle, sleep: RecordingSleep
) -> None:
    serve(server, "/api/user.rating?handle=tourist",
          Reply(429, headers={"Retry-After": "3600"}), envelope([]))  # fmt: skip
    async with HttpClient(UNPACED, pacers=paced(server.base_url, throttle)) as http:
        config = CodeforcesClientConfig(base_url=server.base_url, max_retry_delay_seconds=5)
        client = CodeforcesClient(http, config, sleep=sleep)
        assert await client.user_rating("tourist") == []
    assert sleep.delays == [5]


async def test_network_failure_is_retriable(
    throttle: CountingThrottle, sleep: RecordingSleep
) -> None:
    settings = Settings(_env_file=None, http_timeout_seconds=1, http_min_interval_seconds=0)
    async with HttpClient(settings, pacers=paced("http://127.0.0.1:9", throttle)) as http:
        # Port 9 (discard) on loopback: nothing listens, the connection is refused.
        config = CodeforcesClientConfig(base_url="http://127.0.0.1:9", retries=1)
        client = CodeforcesClient(http, config, sleep=sleep)
        with pytest.raises(CodeforcesUnavailableError):
            await client.user_rating("tourist")
    assert throttle.acquired == 2
    assert sleep.delays == [10.0]


async def test_failed_400_handle_not_found_is_permanent_and_names_the_handle(
    client: CodeforcesClient, server: ReplayServer, sleep: RecordingSleep
) -> None:
    serve(
        server,
        "/api/user.rating?handle=ghost_1",
        failed("handle: User with handle ghost_1 not found"),
    )
    with pytest.raises(HandleNotFoundError) as caught:
        await client.user_rating("ghost_1")
    assert (caught.value.handle, caught.value.upstream_status) == ("ghost_1", 400)
    assert len(server.requests) == 1  # never retried
    assert sleep.delays == []


async def test_failed_400_other_comment_is_kept(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    path = recording("api-FAILED-invalid-param-2019-izaron.json")
    serve(server, "/api/user.rating?handle=x", Reply(400, path.read_bytes()))
    with pytest.raises(CodeforcesFailedError) as caught:
        await client.user_rating("x")
    assert caught.value.comment == "blogEntryId: Field should contain long integer value"
    assert len(server.requests) == 1


async def test_4xx_without_an_envelope_is_permanent(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/user.rating?handle=x", Reply(403, b"<html>Forbidden</html>"))
    with pytest.raises(CodeforcesPermanentError) as caught:
        await client.user_rating("x")
    assert caught.value.upstream_status == 403
    assert len(server.requests) == 1


async def test_5xx_with_some_other_failed_comment_is_retriable(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/user.rating?handle=x", failed("Internal Server Error", 500), envelope([]))
    assert await client.user_rating("x") == []


async def test_lookup_drops_unknown_handles_and_asks_again(
    client: CodeforcesClient, server: ReplayServer, throttle: CountingThrottle
) -> None:
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1;Ghost_1;b_2;ghost_2",
          failed("handles: User with handle Ghost_1 not found"))  # fmt: skip
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1;b_2;ghost_2",
          failed("handles: User with handle ghost_2 not found"))  # fmt: skip
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1;b_2",
          envelope([user("a_1", 1200), user("B_2")]))  # fmt: skip

    lookup = await client.lookup_users(["a_1", "Ghost_1", "b_2", "ghost_2", "GHOST_1"])

    assert lookup.not_found == {"ghost_1", "ghost_2"}
    assert lookup.is_not_found("GHOST_2")
    assert lookup.get("b_2").handle == "B_2"  # type: ignore[union-attr]
    assert lookup.get("a_1").rating == 1200  # type: ignore[union-attr]
    assert throttle.acquired == len(server.requests) == 3


async def test_strict_user_info_raises_handle_not_found(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=ghost_1",
          failed("handles: User with handle ghost_1 not found"))  # fmt: skip
    with pytest.raises(HandleNotFoundError) as caught:
        await client.user_info(["ghost_1"])
    assert caught.value.handle == "ghost_1"


async def test_error_naming_a_handle_not_asked_for_leaves_the_batch_unresolved(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1",
          failed("handles: User with handle zzz not found"))  # fmt: skip
    lookup = await client.lookup_users(["a_1"])
    assert (lookup.found, lookup.not_found, lookup.unresolved) == (
        {},
        frozenset(),
        frozenset({"a_1"}),
    )
    assert lookup.failures == ("codeforces: no user with handle 'zzz'",)


def one_handle_per_batch(server: ReplayServer, throttle: CountingThrottle, sleep: RecordingSleep,
                         http: HttpClient) -> CodeforcesClient:  # fmt: skip
    limit = len(user_info_url(server.base_url, ["a_1"]))
    config = CodeforcesClientConfig(base_url=server.base_url, max_url_length=limit)
    return CodeforcesClient(http, config, sleep=sleep)


async def test_lookup_keeps_going_after_an_unreadable_batch(
    server: ReplayServer, throttle: CountingThrottle, sleep: RecordingSleep
) -> None:
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1", Reply(200, b"<html>"))
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=b_2", envelope([user("b_2")]))
    async with HttpClient(UNPACED, pacers=paced(server.base_url, throttle)) as http:
        lookup = await one_handle_per_batch(server, throttle, sleep, http).lookup_users(
            ["a_1", "b_2"]
        )
    assert (sorted(lookup.found), lookup.unresolved, len(lookup.failures)) == (
        ["b_2"],
        frozenset({"a_1"}),
        1,
    )


async def test_lookup_stops_calling_while_codeforces_is_unavailable(
    server: ReplayServer, throttle: CountingThrottle, sleep: RecordingSleep
) -> None:
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=a_1", Reply(503))
    serve(server, "/api/user.info?checkHistoricHandles=true&handles=b_2", envelope([user("b_2")]))
    async with HttpClient(UNPACED, pacers=paced(server.base_url, throttle)) as http:
        lookup = await one_handle_per_batch(server, throttle, sleep, http).lookup_users(
            ["a_1", "b_2"]
        )
    assert (lookup.found, lookup.unresolved) == ({}, frozenset({"a_1", "b_2"}))
    assert lookup.failures == ("codeforces: unavailable (HTTP 503)",)
    assert len(server.requests) == 3  # a_1 tried three times; b_2 never


async def test_call_limit_in_a_503_answer(
    client: CodeforcesClient, server: ReplayServer, sleep: RecordingSleep
) -> None:
    serve(server, "/api/user.rating?handle=tourist", failed("Call limit exceeded", 503))
    with pytest.raises(CallLimitError):
        await client.user_rating("tourist")
    assert sleep.delays == [3.0, 3.0]


async def test_call_limit_is_retried_after_a_pause_through_the_throttle(
    client: CodeforcesClient,
    server: ReplayServer,
    throttle: CountingThrottle,
    sleep: RecordingSleep,
) -> None:
    serve(
        server, "/api/user.rating?handle=tourist", failed("Call limit exceeded", 400), envelope([])
    )

    assert await client.user_rating("tourist") == []

    assert sleep.delays == [3.0]
    assert throttle.acquired == 2


async def test_call_limit_with_status_200_is_understood_too(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/user.rating?handle=tourist", failed("Call limit exceeded", 200))
    with pytest.raises(CallLimitError) as caught:
        await client.user_rating("tourist")
    assert caught.value.retry_after == 3.0
    assert len(server.requests) == 3


async def test_html_page_with_200_is_unreadable(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    serve(server, "/api/problemset.problems", Reply(200, b"<html>Codeforces is down</html>"))
    with pytest.raises(UnreadableAnswerError):
        await client.problemset_problems()


async def test_oversized_answer_is_permanent(
    throttle: CountingThrottle, server: ReplayServer
) -> None:
    serve(server, "/api/problemset.problems", Reply(200, b"x" * 5000))
    settings = Settings(_env_file=None, http_max_response_bytes=1000, http_min_interval_seconds=0)
    async with HttpClient(settings, pacers=paced(server.base_url, throttle)) as http:
        client = CodeforcesClient(http, CodeforcesClientConfig(base_url=server.base_url))
        with pytest.raises(CodeforcesFailedError, match="over 1000 bytes"):
            await client.problemset_problems()
    assert len(server.requests) == 1


async def test_bad_page_arguments_are_refused_before_any_call(
    client: CodeforcesClient, server: ReplayServer
) -> None:
    with pytest.raises(ValueError, match="start at 1"):
        await client.user_status("x", 0, 10)
    assert server.requests == []
