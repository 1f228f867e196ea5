"""What a calendar must change to hold exactly the desired events (pure).

Inputs are plain values: the events the user should see (contests x their filters) and
the records of what cpsync pushed before. Output is a `Plan` of inserts, updates and
deletes. Nothing here talks to a calendar or a database.

Events are keyed by `(platform, key)`, never by start time, so a reschedule is an
update of the same event, and two contests starting at the same second stay apart.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

EventKey = tuple[str, str]  # (platform, native key)

# Google's limits on client-chosen event ids.


class DesiredStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class PushState(StrEnum):
    SYNCED = "synced"  # the calendar holds the event at `revision`
    FAILED = "failed"  # the last write failed: the calendar may or may not hold it
    DELETED = "deleted"  # we removed it (or found it removed and did not want it)


class Outcome(StrEnum):
    INSERTED = "inserted"
    UPDATED = "updated"
    DELETED = "deleted"
    FAILED = "failed"


class Tamper(StrEnum):
    """What someone other than cpsync did to one of our events."""

    EDITED = "edited"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class DesiredEvent:
    platform: str
    key: str
    revision: int
    summary: str
    description: str
    url: str
    start: datetime
    end: datetime
    status: DesiredStatus = DesiredStatus.SCHEDULED
    reminders: tuple[int, ...] = ()  # minutes before the start
    colour: str | None = None  # a Google event colorId, "1".."11"

    @property
    def event_key(self) -> EventKey:
        return (self.platform, self.key)

    @property
    def digest(self) -> str:
        """Everything the calendar shows, hashed: changes when the contest's revision does,
        and also when only the user's reminders or colour change."""
        shown = "\x1f".join(
            (
                self.summary,
                self.description,
                self.url,
                self.start.isoformat(),
                self.end.isoformat(),
                self.status,
                ",".join(map(str, self.reminders)),
                self.colour or "",
            )
        )
        return hashlib.sha256(shown.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PushedEvent:
    platform: str
    key: str
    external_id: str  # Google event id, or the CalDAV resource path
    revision: int  # the revision the calendar holds (when SYNCED)
    state: PushState = PushState.SYNCED
    etag: str | None = None  # CalDAV only: the resource's ETag after our last write
    error: str | None = None
    digest: str | None = None  # `DesiredEvent.digest` of what we pushed; None if unknown

    @property
    def event_key(self) -> EventKey:
        return (self.platform, self.key)


@dataclass(frozen=True, slots=True)
class Update:
    desired: DesiredEvent
    pushed: PushedEvent


@dataclass(frozen=True, slots=True)
class Plan:
    inserts: tuple[DesiredEvent, ...] = ()
    updates: tuple[Update, ...] = ()
    deletes: tuple[PushedEvent, ...] = ()
    # Ours, gone from the calendar and no longer wanted: record as deleted, no call needed.
    vanished: tuple[PushedEvent, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes)


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one write did. The caller stores it per event; any FAILED fails the run."""

    platform: str
    key: str
    outcome: Outcome
    external_id: str
    revision: int
    etag: str | None = None
    error: str | None = None
    digest: str | None = None

    @property
    def event_key(self) -> EventKey:
        return (self.platform, self.key)


@dataclass(frozen=True, slots=True)
class RunSummary:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    errors: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        return "failed" if self.failed else "ok"


@dataclass(frozen=True, slots=True)
class RemoteEvent:
    """One of the calendar's events as an incremental list reported it."""

    external_id: str
    deleted: bool
    # What the user sees, reduced to a comparable value (Google: the shown fields;
    # CalDAV: the ETag). Empty when deleted.
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class RemoteChanges:
    """What an incremental read of the calendar returned."""

    events: tuple[RemoteEvent, ...]
    cursor: str | None  # Google's next sync token, or the CalDAV sync-token
    # A full listing (first read, or the old cursor expired): one of our events that
    # is absent from it was deleted.
    complete: bool
    reads: int = 1


def event_id(user_id: int | str, platform: str, key: str) -> str:
    """Deterministic Google event id: base32hex of SHA-256(user, platform, key).

    Never derived from the start time, so inserts are idempotent across reschedules.
    The unit separator keeps ("a", "bc") and ("ab", "c") apart.
    """
    material = "\x1f".join((str(user_id), platform, key)).encode()
    digest = hashlib.sha256(material).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def plan_sync(
    desired: Iterable[DesiredEvent],
    pushed: Iterable[PushedEvent],
    tampered: Mapping[EventKey, Tamper] | None = None,
) -> Plan:
    """Diff the desired events against what was pushed.

    - wanted, never pushed (or pushed then deleted) → insert
    - wanted, pushed at another revision or with other reminders or colour, or the last
      write failed → update
    - wanted, edited in the calendar by someone else → update (restore)
    - wanted, deleted in the calendar by someone else → insert (restore)
    - cancelled, or no longer wanted (platform or filter dropped) → delete
    """
    tampered = tampered or {}
    wanted = {event.event_key: event for event in desired}
    records = {record.event_key: record for record in pushed}
    inserts: list[DesiredEvent] = []
    updates: list[Update] = []
    deletes: list[PushedEvent] = []
    vanished: list[PushedEvent] = []
    for event_key, event in sorted(wanted.items()):
        record = records.get(event_key)
        if event.status == DesiredStatus.CANCELLED:
            _plan_removal(record, tampered.get(event_key), deletes, vanished)
        elif record is None or record.state == PushState.DELETED:
            inserts.append(event)
        elif tampered.get(event_key) == Tamper.DELETED:
            inserts.append(event)
        elif _needs_update(event, record, tampered.get(event_key)):
            updates.append(Update(event, record))
    for event_key, record in sorted(records.items()):
        if event_key not in wanted:
            _plan_removal(record, tampered.get(event_key), deletes, vanished)
    return Plan(tuple(inserts), tuple(updates), tuple(deletes), tuple(vanished))


def _needs_update(event: DesiredEvent, record: PushedEvent, tamper: Tamper | None) -> bool:
    return (
        record.state == PushState.FAILED
        or record.revision != event.revision
        or (record.digest is not None and record.digest != event.digest)
        or tamper == Tamper.EDITED
    )


def _plan_removal(
    record: PushedEvent | None,
    tamper: Tamper | None,
    deletes: list[PushedEvent],
    vanished: list[PushedEvent],
) -> None:
    if record is None or record.state == PushState.DELETED:
        return
    if tamper == Tamper.DELETED:
        vanished.append(record)  # already gone: a DELETE would only cost a call
    else:
        deletes.append(record)


def find_tampered(
    remote: Iterable[RemoteEvent],
    desired: Iterable[DesiredEvent],
    pushed: Iterable[PushedEvent],
    still_ours: Callable[[DesiredEvent, PushedEvent, str], bool],
) -> dict[EventKey, Tamper]:
    """Which of our events someone else edited or deleted, from an incremental list.

    Only events we pushed and still believe are there count: others' events and our
    own deletions are ignored. An event whose revision moved on is not judged here,
    because the plan rewrites it anyway. Our own earlier writes show up in the next
    incremental list too; `still_ours(desired, record, fingerprint)` finds them intact
    and so they are not flagged.
    """
    by_id = {r.external_id: r for r in pushed if r.state != PushState.DELETED}
    wanted = {event.event_key: event for event in desired}
    tampered: dict[EventKey, Tamper] = {}
    for item in remote:
        record = by_id.get(item.external_id)
        if record is None:
            continue
        if item.deleted:
            tampered[record.event_key] = Tamper.DELETED
            continue
        event = wanted.get(record.event_key)
        if event is None or event.revision != record.revision:
            continue
        if record.digest is not None and record.digest != event.digest:
            continue
        if not still_ours(event, record, item.fingerprint):
            tampered[record.event_key] = Tamper.EDITED
    return tampered


def with_absent_as_deleted(
    changes: RemoteChanges, pushed: Iterable[PushedEvent]
) -> tuple[RemoteEvent, ...]:
    """A full listing does not mention deleted events: absence is the deletion."""
    if not changes.complete:
        return changes.events
    listed = {item.external_id for item in changes.events}
    absent = [
        RemoteEvent(record.external_id, deleted=True)
        for record in pushed
        if record.state == PushState.SYNCED and record.external_id not in listed
    ]
    return (*changes.events, *absent)


def apply_results(
    pushed: Iterable[PushedEvent], plan: Plan, results: Sequence[CallResult]
) -> list[PushedEvent]:
    """The pushed-event records after a run: what the caller would store per event."""
    records = {record.event_key: record for record in pushed}
    for record in plan.vanished:
        records[record.event_key] = replace(record, state=PushState.DELETED, error=None)
    for result in results:
        records[result.event_key] = _record_after(records.get(result.event_key), result)
    return sorted(records.values(), key=lambda record: record.event_key)


def _record_after(previous: PushedEvent | None, result: CallResult) -> PushedEvent:
    if result.outcome == Outcome.FAILED:
        base = previous or PushedEvent(result.platform, result.key, result.external_id, 0)
        return replace(base, state=PushState.FAILED, error=result.error)
    state = PushState.DELETED if result.outcome == Outcome.DELETED else PushState.SYNCED
    return PushedEvent(
        result.platform,
        result.key,
        result.external_id,
        result.revision,
        state=state,
        etag=result.etag,
        digest=result.digest,
    )


def summarise(results: Iterable[CallResult]) -> RunSummary:
    counts = dict.fromkeys(Outcome, 0)
    errors: list[str] = []
    for result in results:
        counts[result.outcome] += 1
        if result.error:
            errors.append(f"{result.platform}/{_shown(result.key)}: {result.error}")
    return RunSummary(
        inserted=counts[Outcome.INSERTED],
        updated=counts[Outcome.UPDATED],
        deleted=counts[Outcome.DELETED],
        failed=counts[Outcome.FAILED],
        errors=tuple(errors),
    )


def _shown(key: str) -> str:
    # Errors are stored, logged and shown: a key stored before keys were checked may hold
    # a line break.
    return key if key.isprintable() else repr(key)
