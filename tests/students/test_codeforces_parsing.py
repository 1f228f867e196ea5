"""The parsers against every relevant real recording, one case per file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cpsync.errors import PermanentError, RetriableError
from cpsync.students.codeforces_api import (
    CallLimitError,
    CodeforcesFailedError,
    HandleNotFoundError,
    UnreadableAnswerError,
    envelope_result,
    failure_error,
    parse_problem_catalogue,
    parse_rating_changes,
    parse_submissions,
    parse_user_infos,
)

from .conftest import OWN, read_cassette, recording, recordings

USER_INFOS = recordings("user-info-*.json")
RATING_LISTS = recordings("user-rating-*.json") + recordings("contest-ratingChanges-*.json")
STATUS_LISTS = recordings("user-status-*.json")
FAILED = recordings("api-FAILED-*.json")
CASSETTES = recordings("vcr-user-*.yml")


def _items(payload: bytes) -> list[dict[str, Any]]:
    document = json.loads(payload)
    return document if isinstance(document, list) else document["result"]


def _check_infos(payload: bytes) -> None:
    items = _items(payload)
    infos = parse_user_infos(payload)
    assert [info.handle for info in infos] == [item["handle"] for item in items]
    for info, item in zip(infos, items, strict=True):
        assert info.rating == item.get("rating")  # absent for unrated users
        assert info.last_online == datetime.fromtimestamp(item["lastOnlineTimeSeconds"], UTC)
        assert info.registered.tzinfo is UTC


def _check_ratings(payload: bytes) -> None:
    items = _items(payload)
    changes = parse_rating_changes(payload)
    assert len(changes) == len(items)
    for change, item in zip(changes, items, strict=True):
        assert change.contest_id == item["contestId"]
        assert change.delta == item["newRating"] - item["oldRating"]
        assert change.updated_at == datetime.fromtimestamp(item["ratingUpdateTimeSeconds"], UTC)


def _check_submissions(payload: bytes) -> None:
    items = _items(payload)
    submissions = parse_submissions(payload)
    assert [s.id for s in submissions] == [item["id"] for item in items]
    # Newest first by id: the property the incremental paging relies on.
    assert [s.id for s in submissions] == sorted((s.id for s in submissions), reverse=True)
    for submission, item in zip(submissions, items, strict=True):
        assert submission.problem.rating == item["problem"].get("rating")
        assert submission.author.is_team == ("teamId" in item["author"])
        assert submission.is_final == (item.get("verdict") not in (None, "TESTING"))
        assert submission.accepted == (item.get("verdict") == "OK")


@pytest.mark.parametrize("path", USER_INFOS, ids=lambda path: path.stem)
def test_user_info_recording(path: Path) -> None:
    _check_infos(path.read_bytes())


@pytest.mark.parametrize("path", RATING_LISTS, ids=lambda path: path.stem)
def test_rating_change_recording(path: Path) -> None:
    _check_ratings(path.read_bytes())


@pytest.mark.parametrize("path", STATUS_LISTS, ids=lambda path: path.stem)
def test_user_status_recording(path: Path) -> None:
    _check_submissions(path.read_bytes())


@pytest.mark.parametrize("path", CASSETTES, ids=lambda path: path.stem)
def test_vcr_cassette(path: Path) -> None:
    cassette = read_cassette(path)
    assert cassette.status == 200
    method = cassette.uri.split("/api/", 1)[1].split("?", 1)[0]
    check = {
        "user.info": _check_infos,
        "user.rating": _check_ratings,
        "user.status": _check_submissions,
    }
    check[method](cassette.body)


@pytest.mark.parametrize("path", FAILED, ids=lambda path: path.stem)
def test_failed_envelope_is_a_permanent_error_with_its_comment(path: Path) -> None:
    comment = json.loads(path.read_bytes())["comment"]
    with pytest.raises(CodeforcesFailedError) as caught:
        parse_submissions(path.read_bytes())
    assert caught.value.comment == comment


def test_unrated_user_has_no_rating_fields() -> None:
    cassette = read_cassette(
        recording("vcr-user-info-test_tarou-unrated-2015-12-29-codeforces-api-rb.yml")
    )
    (info,) = parse_user_infos(cassette.body)
    assert (info.handle, info.rating, info.max_rating, info.rank, info.max_rank) == (
        "test_tarou",
        None,
        None,
        None,
        None,
    )
    assert info.last_online == datetime(2015, 5, 13, 8, 26, 31, tzinfo=UTC)  # 1431505591


def test_sehnsucht_user_info_exactly() -> None:
    (info,) = parse_user_infos(
        recording("user-info-Sehnsucht-protocol-relative-avatar-2019-izaron.json").read_bytes()
    )
    assert (info.rating, info.max_rating, info.rank, info.max_rank) == (
        2176,
        2200,
        "master",
        "master",
    )
    assert info.last_online == datetime(2019, 8, 11, 16, 49, 15, tzinfo=UTC)  # 1565542155


def test_team_submissions_keep_their_members() -> None:
    submissions = parse_submissions(
        recording("user-status-Sehnsucht-team-submissions-2019-izaron.json").read_bytes()
    )
    assert len(submissions) == 10
    assert all(s.author.team_id == 45767 for s in submissions)
    assert submissions[0].author.team_name == "Пропаганда гоморфизма"
    assert [m.handle for m in submissions[0].author.members] == ["Sehnsucht", "dani_bw", "TaTaPiH"]
    assert submissions[0].author.participant_type == "VIRTUAL"
    assert sum(s.accepted for s in submissions) == 4


def test_fefer_ivan_cassette_mixes_team_and_solo_submissions() -> None:
    cassette = read_cassette(
        recording("vcr-user-status-Fefer_Ivan-count50-2015-12-codeforces-api-rb.yml")
    )
    submissions = parse_submissions(cassette.body)
    assert len(submissions) == 50
    assert sum(s.author.is_team for s in submissions) == 19  # as SOURCES.md says


def test_absam_gym_and_unrated_problems() -> None:
    submissions = parse_submissions(
        recording("user-status-result-Absam-1155subs-2025-05-cftracker.json").read_bytes()
    )
    assert len(submissions) == 1155
    assert sum(1 for s in submissions if (s.contest_id or 0) >= 100_000) == 15
    assert sum(1 for s in submissions if s.problem.rating is None) == 44
    assert sum(s.accepted for s in submissions) == 623


def test_post_2020_account_starts_at_zero() -> None:
    changes = parse_rating_changes(
        recording("user-rating-result-Absam-2025-05-cftracker.json").read_bytes()
    )
    assert (changes[0].old_rating, changes[0].new_rating, changes[0].delta) == (0, 389, 389)
    assert len(changes) == 107


def test_handmade_problem_catalogue() -> None:
    catalogue = parse_problem_catalogue((OWN / "problemset-problems-handmade.json").read_bytes())
    assert catalogue.skipped == 1  # the item without an index
    assert len(catalogue.problems) == 5
    contests = sorted({p.contest_id for p in catalogue.problems if p.contest_id is not None})
    assert contests == [2023, 2024]
    assert [p.index for p in catalogue.problems if p.contest_id == 2024] == ["B", "A"]
    assert [p for p in catalogue.problems if p.contest_id == 2023][1].rating is None
    archive = next(p for p in catalogue.problems if p.contest_id is None)
    assert (archive.problemset_name, archive.index) == ("acmsguru", "100")


@pytest.mark.parametrize(
    ("comment", "kind", "handle"),
    [
        ("handles: User with handle ghost_1 not found", HandleNotFoundError, "ghost_1"),
        ("handle: User with handle -Absam- not found", HandleNotFoundError, "-Absam-"),
        ("Call limit exceeded", CallLimitError, None),
        ("handle: Field should contain between 3 and 24 characters", CodeforcesFailedError, None),
        ("", CodeforcesFailedError, None),
    ],
)
def test_failure_comments(comment: str, kind: type[Exception], handle: str | None) -> None:
    error = failure_error(comment, upstream_status=400)
    assert type(error) is kind
    assert error.upstream_status == 400
    if handle is not None:
        assert isinstance(error, HandleNotFoundError)
        assert error.handle == handle


@pytest.mark.parametrize(
    ("comment", "status", "family"),
    [
        ("handles: User with handle ghost_1 not found", 400, PermanentError),
        ("handle: Field should contain between 3 and 24 characters", 400, PermanentError),
        ("Call limit exceeded", 400, RetriableError),
        ("Service temporarily unavailable", 503, RetriableError),
    ],
)
def test_failures_join_the_one_error_tree(
    comment: str, status: int, family: type[Exception]
) -> None:
    error = failure_error(comment, upstream_status=status)
    assert isinstance(error, family)
    if isinstance(error, RetriableError):
        assert error.retry_after is not None
        assert error.retry_after > 0


def test_call_limit_carries_a_delay() -> None:
    error = failure_error("Call limit exceeded")
    assert isinstance(error, CallLimitError)
    assert error.retry_after >= 2  # the official limit is one call per two seconds


@pytest.mark.parametrize(
    "payload",
    [
        b"<html>Codeforces is temporarily unavailable</html>",
        b"\xff\xfe",
        b"42",
        b'{"status": "OK"}',
        b'{"status": "WEIRD", "result": []}',
        b'{"status": "OK", "result": {}}',
        b"[" * 100_000,
    ],
    ids=["html", "not-utf8", "number", "no-result", "odd-status", "result-not-list", "deep"],
)
def test_unreadable_answers(payload: bytes) -> None:
    with pytest.raises(UnreadableAnswerError, match=r"^codeforces: "):
        parse_submissions(payload)


def test_out_of_range_time_is_unreadable_not_a_crash() -> None:
    item = {"handle": "x", "lastOnlineTimeSeconds": 2**63, "registrationTimeSeconds": 0}
    with pytest.raises(UnreadableAnswerError, match="lastOnlineTimeSeconds"):
        parse_user_infos(json.dumps({"status": "OK", "result": [item]}).encode())


def test_millisecond_looking_seconds_are_not_reinterpreted() -> None:
    # Pydantic would read 1e11 as milliseconds; Codeforces only ever sends seconds.
    item = {"handle": "x", "lastOnlineTimeSeconds": 100_000_000_000, "registrationTimeSeconds": 0}
    (info,) = parse_user_infos(json.dumps({"status": "OK", "result": [item]}).encode())
    assert info.last_online.year == 5138


def test_bare_result_array_is_accepted() -> None:
    assert envelope_result(b"[1, 2]") == [1, 2]


def test_queued_and_testing_submissions_are_not_final() -> None:
    base = {
        "id": 1,
        "creationTimeSeconds": 1_700_000_000,
        "problem": {"index": "A", "name": "P"},
        "author": {"members": [{"handle": "x"}], "participantType": "PRACTICE"},
    }
    queued, testing, judged = parse_submissions(
        json.dumps(
            {
                "status": "OK",
                "result": [
                    base,
                    {**base, "id": 2, "verdict": "TESTING"},
                    {**base, "id": 3, "verdict": "WRONG_ANSWER"},
                ],
            }
        ).encode()
    )
    assert (queued.is_final, testing.is_final, judged.is_final) == (False, False, True)
    assert queued.problem.contest_id is None
