"""The fake Google must refuse what Google refuses, or the sink tests prove nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from cpsync.calendars.google import build_event_body
from tests.calendars.conftest import contest
from tests.calendars.fake_google import FakeGoogle

EVENTS = "/calendar/v3/calendars/primary/events"
GOOD_ID = "abcdefghijklmnopqrstuv0123456789"


@pytest.fixture
def fake() -> FakeGoogle:
    fake = FakeGoogle()
    fake.access_tokens.add("token")
    return fake


def call(fake: FakeGoogle, method: str, target: str, body: Any = None) -> tuple[int, Any]:
    headers = {"authorization": "Bearer token", "content-type": "application/json"}
    payload = json.dumps(body).encode() if body is not None else b""
    status, _, answer = fake.handle(method, target, headers, payload)
    return status, json.loads(answer) if answer else None


def event_body(**extra: Any) -> dict[str, Any]:
    return {"id": GOOD_ID, **build_event_body(contest("atcoder", "x")), **extra}


def test_unknown_property_names_are_refused(fake: FakeGoogle) -> None:
    status, answer = call(fake, "POST", EVENTS, event_body(remindersList=[]))
    assert status == 400
    assert "remindersList" in answer["error"]["message"]
    body = event_body()
    body["extendedProperties"]["privat"] = {"app": "cpsync"}
    assert call(fake, "POST", EVENTS, body)[0] == 400


def test_wrong_types_are_refused_deep_inside(fake: FakeGoogle) -> None:
    body = event_body()
    body["reminders"]["overrides"][0]["minutes"] = "30"
    assert call(fake, "POST", EVENTS, body)[0] == 400
    assert call(fake, "POST", EVENTS, event_body(colorId=7))[0] == 400
    assert call(fake, "POST", EVENTS, event_body(start={"dateTime": "tomorrow"}))[0] == 400


@pytest.mark.parametrize("bad_id", ["abcd", "abcdw", "ABCDEF", "a" * 1025, "abc-def"])
def test_ids_outside_base32hex_or_length_are_refused(fake: FakeGoogle, bad_id: str) -> None:
    status, answer = call(fake, "POST", EVENTS, event_body(id=bad_id))
    assert status == 400
    assert answer["error"]["message"] == "Invalid resource id value."


def test_reused_ids_conflict_even_after_deletion(fake: FakeGoogle) -> None:
    assert call(fake, "POST", EVENTS, event_body())[0] == 200
    assert call(fake, "POST", EVENTS, event_body())[0] == 409
    assert call(fake, "DELETE", f"{EVENTS}/{GOOD_ID}")[0] == 204
    status, answer = call(fake, "POST", EVENTS, event_body())
    assert status == 409
    assert answer["error"]["errors"][0]["reason"] == "duplicate"
    assert call(fake, "DELETE", f"{EVENTS}/{GOOD_ID}")[0] == 410
    assert call(fake, "DELETE", f"{EVENTS}/vvvvvvvv")[0] == 404
    assert call(fake, "PATCH", f"{EVENTS}/vvvvvvvv", {"summary": "x"})[0] == 404


def test_patch_revives_a_cancelled_event(fake: FakeGoogle) -> None:
    call(fake, "POST", EVENTS, event_body())
    call(fake, "DELETE", f"{EVENTS}/{GOOD_ID}")
    status, event = call(fake, "PATCH", f"{EVENTS}/{GOOD_ID}", {"status": "confirmed"})
    assert status == 200
    assert event["status"] == "confirmed"
    assert GOOD_ID in fake.live_events()


def test_sync_token_cannot_be_combined_with_property_filter(fake: FakeGoogle) -> None:
    _, listing = call(fake, "GET", EVENTS)
    token = listing["nextSyncToken"]
    status, _ = call(
        fake, "GET", f"{EVENTS}?syncToken={token}&privateExtendedProperty=app%3Dcpsync"
    )
    assert status == 400
    fake.expire_sync_tokens()
    assert call(fake, "GET", f"{EVENTS}?syncToken={token}")[0] == 410


def test_incremental_list_returns_changes_and_bare_deletions(fake: FakeGoogle) -> None:
    call(fake, "POST", EVENTS, event_body())
    _, first = call(fake, "GET", EVENTS)
    call(fake, "DELETE", f"{EVENTS}/{GOOD_ID}")

    _, changes = call(fake, "GET", f"{EVENTS}?syncToken={first['nextSyncToken']}")

    assert changes["items"] == [
        {
            "kind": "calendar#event",
            "etag": changes["items"][0]["etag"],
            "id": GOOD_ID,
            "status": "cancelled",
        }
    ]


def test_listing_pages(fake: FakeGoogle) -> None:
    for n in range(5):
        call(fake, "POST", EVENTS, event_body(id=f"{GOOD_ID}{n}"))
    _, page = call(fake, "GET", f"{EVENTS}?maxResults=2")
    seen = [e["id"] for e in page["items"]]
    while "nextPageToken" in page:
        _, page = call(fake, "GET", f"{EVENTS}?maxResults=2&pageToken={page['nextPageToken']}")
        seen += [e["id"] for e in page["items"]]
    assert len(seen) == 5
    assert "nextSyncToken" in page


def test_unauthenticated_calls_and_bad_grants_are_refused(fake: FakeGoogle) -> None:
    status, _, _ = fake.handle("GET", EVENTS, {"authorization": "Bearer nope"}, b"")
    assert status == 401
    form = urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": "gone",
            "client_id": "client-id",
            "client_secret": "client-secret",
        }
    ).encode()
    status, _, answer = fake.handle(
        "POST", "/token", {"content-type": "application/x-www-form-urlencoded"}, form
    )
    assert (status, json.loads(answer)["error"]) == (400, "invalid_grant")
