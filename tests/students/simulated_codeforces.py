"""A simulated Codeforces API (an httpx transport) that counts calls and bytes.

Answers `user.info`, `user.rating`, `user.status`, `problemset.problems` and
`contest.standings` from generated users in the real JSON shapes (field for field, so
byte counts are realistic), follows renamed handles like `checkHistoricHandles`, fails
unknown handles the way Codeforces does, and can inject faults (call limit, 503).
Used by the sync tests and by bench/student_sync.py.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

VERDICTS = [("OK", 45), ("WRONG_ANSWER", 30), ("TIME_LIMIT_EXCEEDED", 12), ("RUNTIME_ERROR", 8)]
VERDICTS += [("COMPILATION_ERROR", 3), ("MEMORY_LIMIT_EXCEEDED", 2)]
LANGUAGES = ["GNU C++17", "GNU C++20 (64)", "Python 3", "PyPy 3-64", "Java 21"]
TAGS = ["math", "greedy", "dp", "graphs", "implementation", "strings", "brute force"]
MAX_INFO_HANDLES = 10_000  # what user.info accepts in one call
RANKS = [
    (0, "newbie"),
    (1200, "pupil"),
    (1400, "specialist"),
    (1600, "expert"),
    (1900, "candidate master"),
    (2100, "master"),
    (2400, "grandmaster"),
]


def rank_of(rating: int | None) -> str | None:
    if rating is None:
        return None
    return [name for floor, name in RANKS if rating >= floor][-1]


@dataclass
class SimUser:
    handle: str
    registered: int
    last_online: int
    ratings: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)  # newest first

    @property
    def rating(self) -> int | None:
        return self.ratings[-1]["newRating"] if self.ratings else None

    @property
    def max_rating(self) -> int | None:
        return max((r["newRating"] for r in self.ratings), default=None)

    def info(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "lastName": "",
            "country": "",
            "lastOnlineTimeSeconds": self.last_online,
            "city": "",
            "friendOfCount": 3,
            "titlePhoto": "https://userpic.codeforces.org/no-title.jpg",
            "handle": self.handle,
            "avatar": "https://userpic.codeforces.org/no-avatar.jpg",
            "firstName": "",
            "contribution": 0,
            "organization": "",
            "registrationTimeSeconds": self.registered,
        }
        if self.rating is not None:
            answer |= {
                "rating": self.rating,
                "maxRating": self.max_rating,
                "rank": rank_of(self.rating),
                "maxRank": rank_of(self.max_rating),
            }
        return answer


def problem_json(contest_id: int, index: str, rating: int | None) -> dict[str, Any]:
    problem: dict[str, Any] = {
        "contestId": contest_id,
        "index": index,
        "name": f"Problem {contest_id}{index}",
        "type": "PROGRAMMING",
        "points": 500.0,
        "tags": [TAGS[(contest_id + ord(index[0])) % len(TAGS)]],
    }
    if rating is not None:
        problem["rating"] = rating
    return problem


def catalogue(contests: int) -> list[dict[str, Any]]:
    """Six problems per contest, rated by index (the newest contests not yet rated)."""
    problems = []
    for contest_id in range(1, contests + 1):
        for position, index in enumerate("ABCDEF"):
            rating = None if contest_id > contests - 3 else 800 + 300 * position
            problems.append(problem_json(contest_id, index, rating))
    return problems


class IdSource:
    def __init__(self, start: int = 1_000_000) -> None:
        self.next = start

    def take(self) -> int:
        self.next += 1
        return self.next


def submission_json(
    rng: random.Random, ids: IdSource, handle: str, problem: dict[str, Any], at: int
) -> dict[str, Any]:
    verdict = rng.choices([v for v, _ in VERDICTS], [w for _, w in VERDICTS])[0]
    contest_id = problem["contestId"]
    return {
        "id": ids.take(),
        "contestId": contest_id,
        "creationTimeSeconds": at,
        "relativeTimeSeconds": 2147483647,
        "problem": problem,
        "author": {
            "contestId": contest_id,
            "members": [{"handle": handle}],
            "participantType": rng.choice(["PRACTICE", "CONTESTANT", "VIRTUAL"]),
            "ghost": False,
            "startTimeSeconds": at - 3600,
        },
        "programmingLanguage": rng.choice(LANGUAGES),
        "verdict": verdict,
        "testset": "TESTS",
        "passedTestCount": rng.randint(0, 40),
        "timeConsumedMillis": rng.randint(15, 2000),
        "memoryConsumedBytes": rng.randint(0, 256) * 1024 * 1024,
    }


def generate_user(
    rng: random.Random,
    ids: IdSource,
    handle: str,
    *,
    submissions: int,
    now: int,
    problems: list[dict[str, Any]],
    days: int = 1000,
) -> SimUser:
    """A history of `submissions` over `days`, and a rated contest per ~40 submissions."""
    start = now - days * 86400
    times = sorted(rng.randint(start, now - 86400) for _ in range(submissions))
    user = SimUser(handle, registered=start - 86400, last_online=now - 3600)
    for at in times:  # ids grow with time, as on Codeforces
        problem = problems[rng.randrange(len(problems))]
        user.submissions.append(submission_json(rng, ids, handle, problem, at))
    user.submissions.reverse()
    contests = sorted(rng.sample(range(1, 1 + len(problems) // 6), k=min(submissions // 40, 150)))
    rating = 0
    for position, contest_id in enumerate(contests):
        new_rating = max(0, rating + rng.randint(-80, 150))
        at = start + (position + 1) * (days * 86400 // (len(contests) + 1))
        user.ratings.append(
            {
                "contestId": contest_id,
                "contestName": f"Codeforces Round {contest_id}",
                "handle": handle,
                "rank": rng.randint(1, 20000),
                "ratingUpdateTimeSeconds": at,
                "oldRating": rating,
                "newRating": new_rating,
            }
        )
        rating = new_rating
    return user


def add_activity(
    rng: random.Random,
    ids: IdSource,
    user: SimUser,
    problems: list[dict[str, Any]],
    at: int,
    n: int,
) -> None:
    """`n` new submissions at `at`, and the user seen online then."""
    fresh = [
        submission_json(rng, ids, user.handle, problems[rng.randrange(len(problems))], at)
        for _ in range(n)
    ]
    user.submissions[:0] = list(reversed(fresh))
    user.last_online = max(user.last_online, at)


class SimulatedCodeforces:
    def __init__(
        self, users: list[SimUser] | None = None, problems: list[dict[str, Any]] | None = None
    ) -> None:
        self.users: dict[str, SimUser] = {}
        self.renamed: dict[str, str] = {}  # old handle (casefolded) -> new handle
        self.problems = problems if problems is not None else catalogue(50)
        self.calls: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.faults: list[tuple[str, int, dict[str, Any]]] = []  # (method, status, body)
        # Cleared: served-over-HTTP calls wait until it is set (a test holds a job mid-way).
        self.open = threading.Event()
        self.open.set()
        for user in users or []:
            self.add(user)

    def add(self, user: SimUser) -> None:
        self.users[user.handle.casefold()] = user

    def rename(self, old: str, new: str) -> None:
        user = self.users.pop(old.casefold())
        user.handle = new
        for submission in user.submissions:
            submission["author"]["members"] = [{"handle": new}]
        self.users[new.casefold()] = user
        self.renamed[old.casefold()] = new

    def fail_next(self, method: str, status: int, comment: str) -> None:
        self.faults.append((method, status, {"status": "FAILED", "comment": comment}))

    def find(self, handle: str) -> SimUser | None:
        key = handle.casefold()
        if key in self.renamed:
            key = self.renamed[key].casefold()
        return self.users.get(key)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parts = urlsplit(str(request.url))
        method = parts.path.rsplit("/", 1)[-1]
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.calls[method] += 1
        status, body = self.answer(method, query)
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.bytes[method] += len(payload)
        return httpx.Response(status, content=payload, headers={"content-type": "application/json"})

    def answer(self, method: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for position, (fault_method, status, body) in enumerate(self.faults):
            if fault_method == method:
                del self.faults[position]
                return status, body
        if method == "user.info":
            return self._user_info(query["handles"].split(";"))
        if method == "problemset.problems":
            return 200, {
                "status": "OK",
                "result": {"problems": self.problems, "problemStatistics": []},
            }
        if method == "contest.standings":
            contest_id = int(query["contestId"])
            problems = [p for p in self.problems if p["contestId"] == contest_id]
            return 200, {
                "status": "OK",
                "result": {"contest": {"id": contest_id}, "problems": problems, "rows": []},
            }
        user = self.find(query.get("handle", ""))
        if user is None:
            return 400, {
                "status": "FAILED",
                "comment": f"handle: User with handle {query.get('handle')} not found",
            }
        if method == "user.rating":
            return 200, {"status": "OK", "result": user.ratings}
        if method == "user.status":
            start = int(query.get("from", "1")) - 1
            count = int(query.get("count", "1000000000"))
            return 200, {"status": "OK", "result": user.submissions[start : start + count]}
        return 404, {"status": "FAILED", "comment": f"no method {method}"}

    def _user_info(self, handles: list[str]) -> tuple[int, dict[str, Any]]:
        """All or nothing, like Codeforces: the first unknown handle fails the call."""
        if not 1 <= len(handles) <= MAX_INFO_HANDLES:
            return 400, {
                "status": "FAILED",
                "comment": f"handles: Field should contain between 1 and {MAX_INFO_HANDLES} items",
            }
        result = []
        for handle in handles:
            user = self.find(handle)
            if user is None:
                return 400, {
                    "status": "FAILED",
                    "comment": f"handles: User with handle {handle} not found",
                }
            result.append(user.info())
        return 200, {"status": "OK", "result": result}


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


@contextmanager
def serve_http(sim: SimulatedCodeforces) -> Iterator[str]:
    """The simulator over real HTTP on a free local port (for a server in another thread)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            method = parts.path.rsplit("/", 1)[-1]
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            sim.calls[method] += 1
            sim.open.wait()
            status, body = sim.answer(method, query)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
