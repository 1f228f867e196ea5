"""Google-only behaviour: batching, retries, partial failures, tokens, sync tokens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cpsync.calendars.errors import ReconnectRequiredError, RetriableCalendarError
from cpsync.calendars.google import build_event_body
from cpsync.calendars.plan import Outcome, PushState
from cpsync.errors import PermanentError, RetriableError
from cpsync.http import HttpClient, HttpResponse
from tests.calendars.conftest import (
    BASE,
    GoogleHarness,
    RecordingSleep,
    contest,
    expected_events,
    make_google_sink,
)
from tests.calendars.fake_google import DISCOVERY, EVENT_ID, FakeGoogleServer, Fault, validate


def many_contests(count: int) -> list:
    return [
        contest("codeforces", str(3000 + n), start=BASE + timedelta(hours=n)) for n in range(count)
    ]


def test_event_body_passes_googles_own_schema() -> None:
    body = {"id": "abcdefghijklmnopqrstuv0123456789", **build_event_body(contest("atcoder", "x"))}

    validate(body, {"$ref": "Event"}, "resource")  # raises on unknown names or wrong types

    assert body["summary"] == "[Atcoder] Round x"
    assert body["location"] == "https://example.org/atcoder/x"
    assert body["description"].endswith("https://example.org/atcoder/x")
    assert body["start"] == {"dateTime": "2026-12-05T14:35:00Z", "timeZone": "UTC"}
    assert body["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 30}, {"method": "popup", "minutes": 10}],
    }
    assert body["colorId"] == "7"
    assert body["extendedProperties"]["private"] == {
        "app": "cpsync",
        "platform": "atcoder",
        "key": "x",
        "revision": "1",
    }
    assert "calendar/v3/" == DISCOVERY["servicePath"]


def test_more_than_five_reminders_are_cut_to_five() -> None:
    body = build_event_body(contest("atcoder", "x", reminders=(60, 50, 40, 30, 20, 10)))
    assert len(body["reminders"]["overrides"]) == 5


async def test_inserts_use_deterministic_valid_ids(google_harness: GoogleHarness) -> None:
    await google_harness.sync()

    ids = set(google_harness.server.fake.live_events())
    assert ids == {google_harness.external_id(e.key) for e in google_harness.desired}
    assert all(EVENT_ID.fullmatch(i) for i in ids)  # the fake refuses others, as Google does


async def test_writes_go_in_batches_of_fifty(google_harness: GoogleHarness) -> None:
    google_harness.desired = many_contests(120)

    run = await google_harness.sync()

    assert run.summary.inserted == 120
    fake = google_harness.server.fake
    assert fake.http_requests["/batch/calendar/v3"] == 3  # 50 + 50 + 20
    assert all(call.in_batch for call in fake.calls if call.op == "insert")


async def test_rate_limited_calls_alone_are_retried_with_backoff(
    google_harness: GoogleHarness,
) -> None:
    google_harness.desired = many_contests(30)
    fake = google_harness.server.fake
    fake.calls_per_batch_limit = 12  # Google-like: the tail of each batch gets 403

    run = await google_harness.sync()

    assert run.summary.inserted == 30
    assert run.summary.status == "ok"
    inserts = [c for c in fake.calls if c.op == "insert"]
    assert len(inserts) == 30  # no call that succeeded was sent again
    assert sum(1 for c in fake.calls if c.op == "throttled") == 18 + 6
    first, second = google_harness.sleep.delays
    assert 0.5 <= first <= 1.0
    assert 1.0 <= second <= 2.0
    assert google_harness.calendar() == expected_events(google_harness)


async def test_429_and_500_inner_answers_are_retried(google_harness: GoogleHarness) -> None:
    fake = google_harness.server.fake
    first, second = google_harness.desired[:2]
    fake.inject(429, "rateLimitExceeded", event_id=google_harness.external_id(first.key))
    fake.inject(500, "backendError", event_id=google_harness.external_id(second.key), times=2)

    run = await google_harness.sync()

    assert run.summary.inserted == 6
    assert len(google_harness.sleep.delays) == 2


async def test_whole_batch_refused_with_429_is_retried_honouring_retry_after(
    google_harness: GoogleHarness,
) -> None:
    fake = google_harness.server.fake
    fake.batch_faults.append(Fault(429, "rateLimitExceeded", retry_after="7"))

    run = await google_harness.sync()

    assert run.summary.inserted == 6
    assert fake.http_requests["/batch/calendar/v3"] == 2
    assert google_harness.sleep.delays == [7.0]


async def test_backoff_is_bounded_and_persistent_failure_fails_only_that_event(
    google_harness: GoogleHarness,
) -> None:
    fake = google_harness.server.fake
    doomed = google_harness.desired[0]
    fake.inject(503, "backendError", event_id=google_harness.external_id(doomed.key), times=99)

    run = await google_harness.sync()

    assert run.summary.status == "failed"
    assert (run.summary.inserted, run.summary.failed) == (5, 1)
    assert len(google_harness.sleep.delays) == 4  # five attempts, four waits
    assert max(google_harness.sleep.delays) <= 32
    failed = next(r for r in google_harness.records if r.key == doomed.key)
    assert failed.state == PushState.FAILED
    assert "503" in (failed.error or "")


async def test_batch_with_some_failed_calls_reports_the_run_failed_then_heals(
    google_harness: GoogleHarness,
) -> None:
    fake = google_harness.server.fake
    broken = google_harness.desired[2:4]
    for event in broken:
        fake.inject(400, "invalid", event_id=google_harness.external_id(event.key))

    run = await google_harness.sync()

    outcomes = {r.key: r.outcome for r in run.results}
    assert [outcomes[e.key] for e in broken] == [Outcome.FAILED, Outcome.FAILED]
    assert run.summary.inserted == 4
    assert run.summary.status == "failed"
    assert all(r.error for r in run.results if r.outcome == Outcome.FAILED)
    assert google_harness.sleep.delays == []  # 400 is permanent: no retry

    healed = await google_harness.sync()  # the failed ones are tried again next run

    assert healed.summary.status == "ok"
    assert google_harness.calendar() == expected_events(google_harness)


async def test_revoked_refresh_token_asks_for_reconnection(
    google_harness: GoogleHarness,
) -> None:
    await google_harness.sync()
    fake = google_harness.server.fake
    fake.revoke("refresh-1")  # the user removed cpsync's access in their Google account
    fake.reset_counters()

    with pytest.raises(ReconnectRequiredError) as caught:
        await google_harness.sync()

    assert isinstance(caught.value, PermanentError)  # the task layer does not retry it
    assert fake.writes() == 0
    assert len(fake.live_events()) == 6  # nothing deleted, on either side


async def test_expired_access_token_is_refreshed_once(google_harness: GoogleHarness) -> None:
    await google_harness.sync()
    fake = google_harness.server.fake
    fake.expire_access_tokens()  # the token looks valid locally but Google says 401
    fake.reset_counters()

    run = await google_harness.sync()

    assert run.plan.writes == 0
    assert fake.http_requests["/token"] == 1
    assert fake.reads() == 1


async def test_expired_sync_token_falls_back_to_a_full_listing(
    google_harness: GoogleHarness,
) -> None:
    await google_harness.sync()
    victim = google_harness.desired[0]
    await google_harness.user_deletes(victim.key)
    google_harness.server.fake.expire_sync_tokens()

    run = await google_harness.sync()

    # A full listing does not mention deleted events: absence is the deletion.
    assert run.tampered == {victim.event_key: "deleted"}
    assert google_harness.calendar() == expected_events(google_harness)


async def test_other_events_of_the_user_are_never_touched(google_harness: GoogleHarness) -> None:
    fake = google_harness.server.fake
    await google_harness.sync()
    mine = fake.user_add(
        {
            "summary": "Dentist",
            "start": {"dateTime": "2026-12-06T09:00:00Z"},
            "end": {"dateTime": "2026-12-06T10:00:00Z"},
        }
    )
    google_harness.desired = []

    run = await google_harness.sync()

    assert run.summary.deleted == 6
    assert set(fake.live_events()) == {mine}


async def test_dedicated_calendar(google_server: FakeGoogleServer, http: HttpClient) -> None:
    sink = make_google_sink(google_server, http, RecordingSleep())
    calendar_id = await sink.create_calendar("Contests")
    harness = GoogleHarness("google", sink)
    harness.server = google_server

    await harness.sync()

    assert calendar_id.endswith("@group.calendar.google.com")
    assert harness.calendar() == expected_events(harness)
    assert google_server.fake.live_events("primary") == {}


async def test_id_taken_by_a_deleted_event_is_revived_not_duplicated(
    google_harness: GoogleHarness,
) -> None:
    await google_harness.sync()
    event = google_harness.desired[0]
    google_harness.server.fake.user_delete(google_harness.external_id(event.key))
    # The service lost its records (a restored backup): every insert meets a 409.
    google_harness.records, google_harness.cursor = [], None
    fake = google_harness.server.fake
    fake.reset_counters()

    run = await google_harness.sync()

    assert run.summary.inserted == 6
    assert sum(1 for c in fake.calls if c.op == "insert" and c.status == 409) == 6
    assert google_harness.calendar() == expected_events(google_harness)


async def test_incremental_list_never_combines_sync_token_and_property_filter(
    google_harness: GoogleHarness,
) -> None:
    # The fake answers 400 to that combination, as Google does; three clean runs prove
    # the sink does not send it.
    for _ in range(3):
        assert (await google_harness.sync()).summary.status == "ok"
    assert not [c for c in google_harness.server.fake.calls if c.status == 400]
    assert json.dumps(google_harness.cursor)


async def test_token_endpoint_outage_is_retriable_not_a_reconnect(
    google_harness: GoogleHarness,
) -> None:
    class DownTokenEndpoint:
        async def send(self, method, url, *, headers, content=b""):
            return HttpResponse(503, {"retry-after": "30"}, b"")

    google_harness.sink._auth._http = DownTokenEndpoint()

    with pytest.raises(RetriableCalendarError) as caught:
        await google_harness.sync()

    assert caught.value.retry_after == 30
    assert isinstance(caught.value, RetriableError)
