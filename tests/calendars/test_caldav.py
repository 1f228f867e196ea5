"""CalDAV-only behaviour against a real Radicale: conditional PUTs, SEQUENCE, change checks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest
from icalendar import Calendar

from cpsync.calendars.errors import ReconnectRequiredError
from cpsync.calendars.ical import build_event_calendar
from cpsync.calendars.plan import Outcome
from cpsync.http import HttpResponse
from tests.calendars.conftest import BASE, CalDavHarness, contest, expected_events, rescheduled
from tests.calendars.conftest import shown_events as shown


async def resource(harness: CalDavHarness, key: str) -> Calendar:
    event = next(e for e in harness.desired if e.key == key)
    url = harness.sink._url(harness.sink.external_id(event.platform, event.key))
    response = await harness.transport.inner.send(
        "GET", url, headers={"Authorization": harness.sink._auth}
    )
    assert response.status == 200
    return Calendar.from_ical(response.body)


def test_single_event_body_is_valid_rfc5545() -> None:
    body = build_event_calendar(contest("codeforces", "2050", revision=3), stamp=BASE)
    calendar = Calendar.from_ical(body)
    (event,) = calendar.walk("VEVENT")

    assert b"\r\n" in body
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert str(event["UID"]) == "codeforces-2050@cpsync"
    assert event["SEQUENCE"] == 2
    assert "DTEND" in event
    assert "DURATION" not in event
    assert event["DTSTART"].dt == BASE
    assert str(event["COLOR"]) == "deepskyblue"
    assert [str(a["TRIGGER"].to_ical(), "ascii") for a in event.walk("VALARM")] == [
        "-PT30M",
        "-PT10M",
    ]


async def test_creates_and_updates_are_conditional(caldav_harness: CalDavHarness) -> None:
    await caldav_harness.sync()
    puts = [h for m, _, h in caldav_harness.transport.requests if m == "PUT"]
    assert puts
    assert all(h.get("If-None-Match") == "*" for h in puts)
    moved = rescheduled(caldav_harness.desired[0], timedelta(days=1))
    caldav_harness.replace_desired(moved.key, moved)
    caldav_harness.reset_counters()

    await caldav_harness.sync()

    (put,) = [h for m, _, h in caldav_harness.transport.requests if m == "PUT"]
    record = next(r for r in caldav_harness.records if r.key == moved.key)
    assert "If-Match" in put
    assert record.etag
    assert put["If-Match"] != record.etag


async def test_sequence_follows_the_revision_and_uid_stays(caldav_harness: CalDavHarness) -> None:
    await caldav_harness.sync()
    moved = rescheduled(rescheduled(caldav_harness.desired[0], timedelta(hours=1)), timedelta())
    caldav_harness.replace_desired(moved.key, moved)

    await caldav_harness.sync()

    (event,) = (await resource(caldav_harness, moved.key)).walk("VEVENT")
    assert event["SEQUENCE"] == moved.revision - 1 == 2
    assert str(event["UID"]) == f"{moved.platform}-{moved.key}@cpsync"
    assert event["DTSTART"].dt == moved.start


async def test_unchanged_collection_costs_one_report(caldav_harness: CalDavHarness) -> None:
    await caldav_harness.sync()
    await caldav_harness.sync()
    caldav_harness.reset_counters()

    await caldav_harness.sync()

    assert caldav_harness.transport.methods() == {"REPORT": 1}


async def test_stale_sync_token_falls_back_to_a_full_listing(
    caldav_harness: CalDavHarness,
) -> None:
    await caldav_harness.sync()
    victim = caldav_harness.desired[5]
    await caldav_harness.user_deletes(victim.key)
    caldav_harness.cursor = "http://radicale.org/ns/sync/not-a-real-token"

    run = await caldav_harness.sync()

    assert run.tampered == {victim.event_key: "deleted"}
    assert await shown(caldav_harness) == expected_events(caldav_harness)


async def test_lost_records_take_over_existing_resources(caldav_harness: CalDavHarness) -> None:
    await caldav_harness.sync()
    caldav_harness.records, caldav_harness.cursor = [], None

    run = await caldav_harness.sync()

    assert run.summary.inserted == 6
    assert run.summary.status == "ok"
    assert await shown(caldav_harness) == expected_events(caldav_harness)


class FlakyTransport:
    """Answers the first `failures` PUTs with 503 and refuses sync-collection."""

    def __init__(self, inner: object, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes = b""
    ) -> HttpResponse:
        self.requests.append((method, url, dict(headers)))
        if method == "PUT" and self.failures > 0:
            self.failures -= 1
            return HttpResponse(503, {"retry-after": "2"}, b"")
        if method == "REPORT":
            return HttpResponse(501, {}, b"")
        return await self.inner.send(method, url, headers=headers, content=content)  # type: ignore[attr-defined]


async def test_server_trouble_is_retried_and_listing_works_without_sync_collection(
    caldav_harness: CalDavHarness,
) -> None:
    flaky = FlakyTransport(caldav_harness.transport, failures=2)
    caldav_harness.sink._http = flaky

    run = await caldav_harness.sync()

    assert run.summary.inserted == 6
    assert caldav_harness.sink._sleep.delays == [2.0, 2.0]  # Retry-After honoured
    assert [m for m, _, _ in flaky.requests[:2]] == ["REPORT", "PROPFIND"]
    flaky.requests.clear()
    again = await caldav_harness.sync()
    assert again.plan.writes == 0
    assert [m for m, _, _ in flaky.requests] == ["REPORT", "PROPFIND"]


async def test_persistent_failure_fails_only_that_event(caldav_harness: CalDavHarness) -> None:
    flaky = FlakyTransport(caldav_harness.transport, failures=4)  # max_attempts is 4
    caldav_harness.sink._http = flaky

    run = await caldav_harness.sync()

    assert (run.summary.inserted, run.summary.failed, run.summary.status) == (5, 1, "failed")
    assert next(r for r in run.results if r.outcome == Outcome.FAILED).error


async def test_contests_outside_safe_names_get_hashed_resource_names(
    caldav_harness: CalDavHarness,
) -> None:
    odd = contest("hackerrank", "weird key/with slash?")
    caldav_harness.desired = [odd]

    run = await caldav_harness.sync()

    assert run.summary.inserted == 1
    assert "/" not in run.results[0].external_id.rsplit("/", 1)[1].removesuffix(".ics")
    assert await shown(caldav_harness) == expected_events(caldav_harness)


class RefusingTransport:
    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes = b""
    ) -> HttpResponse:
        return HttpResponse(401, {"www-authenticate": 'Basic realm="x"'}, b"")


async def test_refused_app_password_asks_for_reconnection(caldav_harness: CalDavHarness) -> None:
    caldav_harness.sink._http = RefusingTransport()

    with pytest.raises(ReconnectRequiredError):
        await caldav_harness.sync()


class EditingTransport:
    """The user's phone edits the event right after each of our reads (the REPORT, then
    each PROPFIND of its resource), `edits` times: every PUT meets a changed ETag."""

    def __init__(self, harness: CalDavHarness, key: str, edits: int) -> None:
        self.harness, self.key, self.edits = harness, key, edits
        self.inner = harness.transport
        event = next(e for e in harness.desired if e.key == key)
        self.path = harness.sink._url(harness.sink.external_id(event.platform, event.key))
        self.statuses: list[tuple[str, int]] = []

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes = b""
    ) -> HttpResponse:
        response = await self.inner.send(method, url, headers=headers, content=content)
        self.statuses.append((method, response.status))
        read_of_event = method == "REPORT" or (method == "PROPFIND" and url == self.path)
        if read_of_event and self.edits > 0:
            self.edits -= 1
            await self._edit()
        return response

    async def _edit(self) -> None:
        auth = {"Authorization": self.harness.sink._auth}
        current = await self.inner.inner.send("GET", self.path, headers=auth)
        body = current.body.replace(b"SUMMARY:", b"SUMMARY:edited ")  # new content each time
        headers = {**auth, "Content-Type": "text/calendar"}
        answer = await self.inner.inner.send("PUT", self.path, headers=headers, content=body)
        assert answer.status == 204


async def test_an_event_edited_between_our_read_and_our_put_is_read_again_and_updated(
    caldav_harness: CalDavHarness,
) -> None:
    await caldav_harness.sync()
    moved = rescheduled(caldav_harness.desired[0], timedelta(hours=3))
    caldav_harness.replace_desired(moved.key, moved)
    editing = EditingTransport(caldav_harness, moved.key, edits=2)
    caldav_harness.sink._http = editing

    run = await caldav_harness.sync()

    assert editing.edits == 0
    assert [s for m, s in editing.statuses if m == "PUT"] == [412, 412, 204]
    assert (run.summary.updated, run.summary.failed) == (1, 0)
    assert await shown(caldav_harness) == expected_events(caldav_harness)
    record = next(r for r in caldav_harness.records if r.key == moved.key)
    (current,) = [
        e
        for e in (await caldav_harness.sink.changes(None)).events
        if e.external_id == record.external_id
    ]
    assert record.etag == current.fingerprint  # the next run sees no foreign edit
