"""ICS output: re-parsed, checked against RFC 5545, and accepted by a real CalDAV server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from icalendar import Calendar

from cpsync.contests.ics import build_calendar, event_uid
from cpsync.contests.models import Contest

T0 = datetime(2026, 12, 1, 14, 35, tzinfo=UTC)
PROPFIND_ETAGS = b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'

TRICKY_NAMES = [
    "Codeforces Round 1000 (Div. 1, Div. 2); rated",
    "Line one\nline two\\ with backslash",
    "<script>alert('x')</script> & <b>bold</b>",
    "🏆 Grand Final — 決勝 🎉 " + "very long name " * 8,
    'Comma, semicolon; colon: quote" end',
]


def contest(
    key: str, name: str, *, revision: int = 1, status: str = "scheduled", hours: int = 0
) -> Contest:
    start = T0 + timedelta(hours=hours)
    return Contest(
        platform="codeforces",
        key=key,
        name=name,
        url=f"https://codeforces.com/contests/{key}",
        start=start,
        end=start + timedelta(hours=2),
        duration_seconds=7200,
        status=status,
        revision=revision,
        first_seen_at=T0 - timedelta(days=3),
        last_seen_at=T0,
        updated_at=T0 - timedelta(days=1),
    )


def sample() -> list[Contest]:
    rows = [contest(str(2000 + i), name, hours=i) for i, name in enumerate(TRICKY_NAMES)]
    rows.append(contest("2999", "Moved then cancelled", revision=3, status="cancelled"))
    return rows


def test_calendar_has_required_properties() -> None:
    calendar = Calendar.from_ical(build_calendar(sample(), name="My, contests"))
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert str(calendar["X-WR-CALNAME"]) == "My, contests"
    raw = build_calendar(sample(), name="x")
    assert b"\r\nX-PUBLISHED-TTL:PT1H\r\n" in raw
    assert b"\r\nREFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in raw
    events = calendar.walk("VEVENT")
    assert len(events) == len(sample())
    for event in events:
        for required in ("UID", "DTSTAMP", "DTSTART", "DTEND"):
            assert required in event
        assert "DURATION" not in event
        assert event["DTSTART"].dt.tzinfo is not None
        assert event["DTSTART"].dt.utcoffset() == timedelta(0)


def test_names_round_trip_exactly() -> None:
    calendar = Calendar.from_ical(build_calendar(sample(), name="x"))
    summaries = [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")]
    assert summaries[: len(TRICKY_NAMES)] == [f"[Codeforces] {name}" for name in TRICKY_NAMES]


def test_lines_are_crlf_folded_and_escaped() -> None:
    raw = build_calendar(sample(), name="x")
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # folding never splits a multi-byte character
    unfolded = raw.replace(b"\r\n ", b"")
    assert b"Div. 1\\, Div. 2)\\; rated" in unfolded
    assert b"Line one\\nline two\\\\ with backslash" in unfolded


def test_uid_sequence_and_status() -> None:
    calendar = Calendar.from_ical(build_calendar(sample(), name="x"))
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    cancelled = events[event_uid("codeforces", "2999")]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert int(cancelled["SEQUENCE"]) == 2
    assert str(events[event_uid("codeforces", "2000")]["STATUS"]) == "CONFIRMED"
    assert events[event_uid("codeforces", "2000")]["DTSTAMP"].dt == T0 - timedelta(days=1)


def test_output_is_deterministic() -> None:
    assert build_calendar(sample(), name="x") == build_calendar(sample(), name="x")


def test_reminders_become_alarms_on_live_events_only() -> None:
    calendar = Calendar.from_ical(build_calendar(sample(), name="x", reminder_minutes=[15, 60]))
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    alarms = events[event_uid("codeforces", "2000")].walk("VALARM")
    assert sorted(a["TRIGGER"].dt for a in alarms) == [
        timedelta(minutes=-60),
        timedelta(minutes=-15),
    ]
    assert events[event_uid("codeforces", "2999")].walk("VALARM") == []


def test_radicale_accepts_the_calendar(radicale_url: str) -> None:
    collection = f"{radicale_url}/tester/contests-{uuid.uuid4().hex[:8]}/"
    body = build_calendar(sample(), name="cpsync test")
    with httpx.Client(auth=("tester", "x"), timeout=10) as client:
        put = client.put(collection, content=body, headers={"Content-Type": "text/calendar"})
        assert put.status_code in (201, 204), put.text
        listing = client.request(
            "PROPFIND",
            collection,
            headers={"Depth": "1"},
            content=PROPFIND_ETAGS,
        )
        assert listing.status_code == 207
        stored = client.get(collection)
    assert stored.status_code == 200
    uids = {str(e["UID"]) for e in Calendar.from_ical(stored.content).walk("VEVENT")}
    assert uids == {event_uid("codeforces", c.key) for c in sample()}
    assert listing.text.count("<href>") - 1 == len(sample())
