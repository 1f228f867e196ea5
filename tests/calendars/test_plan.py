"""The pure core: event ids, the plan, tamper detection, per-event records, summaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from cpsync.calendars.plan import (
    CallResult,
    DesiredStatus,
    Outcome,
    Plan,
    PushedEvent,
    PushState,
    RemoteChanges,
    RemoteEvent,
    Tamper,
    apply_results,
    event_id,
    find_tampered,
    plan_sync,
    summarise,
    with_absent_as_deleted,
)
from tests.calendars.conftest import BASE, contest, rescheduled
from tests.calendars.fake_google import EVENT_ID as GOOGLE_EVENT_ID


def pushed(event, external_id=None, **overrides) -> PushedEvent:
    return PushedEvent(
        event.platform, event.key, external_id or f"id-{event.key}", event.revision, **overrides
    )


def test_event_id_is_deterministic_base32hex_within_googles_limits() -> None:
    first = event_id(7, "codeforces", "2050")

    assert first == event_id(7, "codeforces", "2050")
    assert GOOGLE_EVENT_ID.fullmatch(first)


def test_event_id_separates_user_platform_and_key() -> None:
    ids = {
        event_id(7, "codeforces", "2050"),
        event_id(8, "codeforces", "2050"),
        event_id(7, "atcoder", "2050"),
        event_id(7, "codeforces", "2051"),
        event_id("7c", "odeforces", "2050"),  # no ambiguity from plain concatenation
    }
    assert len(ids) == 5


@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_every_event_id_is_valid(user: str, platform: str, key: str) -> None:
    assert GOOGLE_EVENT_ID.fullmatch(event_id(user, platform, key))


def test_first_plan_inserts_everything_scheduled() -> None:
    wanted = [contest("codeforces", "1"), contest("codeforces", "2")]
    cancelled = contest("atcoder", "x", status=DesiredStatus.CANCELLED)

    plan = plan_sync([*wanted, cancelled], [])

    assert plan == Plan(inserts=tuple(wanted))


def test_unchanged_revisions_plan_nothing() -> None:
    wanted = [contest("codeforces", "1"), contest("leetcode", "w")]
    assert plan_sync(wanted, [pushed(e) for e in wanted]) == Plan()


def test_changed_revision_is_an_update_and_start_time_is_not_the_key() -> None:
    before = contest("codeforces", "1")
    after = rescheduled(before, timedelta(hours=2))

    plan = plan_sync([after], [pushed(before)])

    assert [(u.desired, u.pushed.external_id) for u in plan.updates] == [(after, "id-1")]
    assert not plan.inserts
    assert not plan.deletes


def test_two_contests_at_the_same_second_stay_apart() -> None:
    div1, div2 = contest("codeforces", "2050"), contest("codeforces", "2051")
    assert div1.start == div2.start
    assert len(plan_sync([div1, div2], []).inserts) == 2


def test_cancelled_and_undesired_events_are_deleted() -> None:
    kept = contest("codeforces", "1")
    cancelled = contest("codeforces", "2", status=DesiredStatus.CANCELLED, revision=2)
    dropped = contest("atcoder", "x")
    records = [pushed(kept), pushed(replace(cancelled, revision=1)), pushed(dropped)]

    plan = plan_sync([kept, cancelled], records)

    assert {r.key for r in plan.deletes} == {"2", "x"}
    assert not plan.inserts
    assert not plan.updates


def test_already_deleted_records_are_not_deleted_again() -> None:
    gone = contest("codeforces", "2", status=DesiredStatus.CANCELLED)
    plan = plan_sync([gone], [pushed(gone, state=PushState.DELETED)])
    assert plan == Plan()


def test_failed_writes_are_retried_as_updates() -> None:
    event = contest("codeforces", "1")
    plan = plan_sync([event], [pushed(event, state=PushState.FAILED, error="500")])
    assert [u.desired for u in plan.updates] == [event]


def test_deleted_record_wanted_again_is_an_insert() -> None:
    event = contest("codeforces", "1", revision=3)
    plan = plan_sync([event], [pushed(replace(event, revision=2), state=PushState.DELETED)])
    assert plan.inserts == (event,)


def test_tampered_events_are_restored() -> None:
    edited, deleted = contest("codeforces", "1"), contest("codeforces", "2")
    records = [pushed(edited), pushed(deleted)]
    tampered = {edited.event_key: Tamper.EDITED, deleted.event_key: Tamper.DELETED}

    plan = plan_sync([edited, deleted], records, tampered)

    assert [u.desired for u in plan.updates] == [edited]
    assert plan.inserts == (deleted,)


def test_user_deleted_event_we_no_longer_want_costs_no_call() -> None:
    event = contest("codeforces", "1")
    plan = plan_sync([], [pushed(event)], {event.event_key: Tamper.DELETED})
    assert plan.writes == 0
    assert [r.key for r in plan.vanished] == ["1"]


def same_fingerprint(_event, _record, fingerprint: str) -> bool:
    return fingerprint == "ours"


def test_find_tampered_flags_edits_and_deletions_of_our_events_only() -> None:
    a, b, c = contest("codeforces", "a"), contest("codeforces", "b"), contest("codeforces", "c")
    records = [pushed(a), pushed(b), pushed(c)]
    remote = [
        RemoteEvent("id-a", False, "ours"),  # our own write echoed back
        RemoteEvent("id-b", False, "changed"),
        RemoteEvent("id-c", True),
        RemoteEvent("someone-elses", False, "whatever"),
    ]

    tampered = find_tampered(remote, [a, b, c], records, same_fingerprint)

    assert tampered == {b.event_key: Tamper.EDITED, c.event_key: Tamper.DELETED}


def test_find_tampered_ignores_our_own_deletions_and_pending_revisions() -> None:
    moved = rescheduled(contest("codeforces", "m"), timedelta(hours=1))
    gone = contest("codeforces", "g")
    records = [pushed(contest("codeforces", "m")), pushed(gone, state=PushState.DELETED)]
    remote = [RemoteEvent("id-m", False, "changed"), RemoteEvent("id-g", True)]

    assert find_tampered(remote, [moved], records, same_fingerprint) == {}


def test_a_full_listing_treats_absent_events_as_deleted() -> None:
    a, b = contest("codeforces", "a"), contest("codeforces", "b")
    records = [pushed(a), pushed(b)]
    listed = RemoteChanges((RemoteEvent("id-a", False, "ours"),), "token", complete=True)
    partial = replace(listed, complete=False)

    assert [e.external_id for e in with_absent_as_deleted(listed, records) if e.deleted] == ["id-b"]
    assert with_absent_as_deleted(partial, records) == partial.events


def test_apply_results_records_each_outcome() -> None:
    new, moved, gone, broken = (contest("codeforces", k) for k in "nmgb")
    moved2 = replace(moved, revision=2)
    records = [pushed(moved), pushed(gone)]
    plan = plan_sync([new, moved2, broken], records)
    results = [
        CallResult("codeforces", "n", Outcome.INSERTED, "id-n", 1, etag='"1"'),
        CallResult("codeforces", "m", Outcome.UPDATED, "id-m", 2),
        CallResult("codeforces", "g", Outcome.DELETED, "id-g", 1),
        CallResult("codeforces", "b", Outcome.FAILED, "id-b", 1, error="HTTP 400"),
    ]

    after = {r.key: r for r in apply_results(records, plan, results)}

    assert (after["n"].state, after["n"].etag) == (PushState.SYNCED, '"1"')
    assert (after["m"].state, after["m"].revision) == (PushState.SYNCED, 2)
    assert after["g"].state == PushState.DELETED
    assert (after["b"].state, after["b"].error) == (PushState.FAILED, "HTTP 400")


def test_summary_fails_the_run_when_any_call_failed() -> None:
    ok = CallResult("codeforces", "1", Outcome.INSERTED, "x", 1)
    bad = CallResult("codeforces", "2", Outcome.FAILED, "y", 1, error="HTTP 500")

    assert summarise([ok]).status == "ok"
    summary = summarise([ok, bad])
    assert (summary.inserted, summary.failed, summary.status) == (1, 1, "failed")
    assert summary.errors == ("codeforces/2: HTTP 500",)


keys = st.sampled_from(["a", "b", "c", "d", "e"])
events = st.builds(
    lambda key, revision, cancelled: contest(
        "codeforces",
        key,
        revision=revision,
        start=BASE,
        status=DesiredStatus.CANCELLED if cancelled else DesiredStatus.SCHEDULED,
    ),
    keys,
    st.integers(1, 3),
    st.booleans(),
)


@given(st.lists(events, unique_by=lambda e: e.key), st.lists(events, unique_by=lambda e: e.key))
def test_applying_a_successful_plan_converges(before: list, after: list) -> None:
    records = apply_results([], plan_sync(before, []), _all_succeed(plan_sync(before, [])))
    plan = plan_sync(after, records)

    records = apply_results(records, plan, _all_succeed(plan))

    assert plan_sync(after, records) == Plan()
    live = {r.event_key for r in records if r.state == PushState.SYNCED}
    assert live == {e.event_key for e in after if e.status == DesiredStatus.SCHEDULED}


def _all_succeed(plan: Plan) -> list[CallResult]:
    results = [
        CallResult(e.platform, e.key, Outcome.INSERTED, f"id-{e.key}", e.revision)
        for e in plan.inserts
    ]
    results += [
        CallResult(u.desired.platform, u.desired.key, Outcome.UPDATED, "x", u.desired.revision)
        for u in plan.updates
    ]
    results += [
        CallResult(r.platform, r.key, Outcome.DELETED, r.external_id, r.revision)
        for r in plan.deletes
    ]
    return results


def test_changed_reminders_or_colour_update_without_a_new_revision() -> None:
    event = contest("codeforces", "1")
    record = replace(pushed(event), digest=event.digest)
    louder = replace(event, reminders=(60, 30, 10))
    recoloured = replace(event, colour="11")

    assert plan_sync([event], [record]) == Plan()
    assert [u.desired for u in plan_sync([louder], [record]).updates] == [louder]
    assert [u.desired for u in plan_sync([recoloured], [record]).updates] == [recoloured]
