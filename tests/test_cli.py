"""`cpsync` end to end: replayed recordings over HTTP, a real database, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from cpsync.cli import Runtime, app
from cpsync.platforms.registry import PLATFORMS
from cpsync.settings import Settings
from tests.recordings import RECORDED_AT, MutableClock, expected_contests, serve_all
from tests.replay import ReplayServer, Reply

pytestmark = pytest.mark.usefixtures("shared_fixtures", "database")


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime(settings=settings, clock=MutableClock(RECORDED_AT))


def cli(runtime: Runtime, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), obj=runtime)
    return result.exit_code, result.stdout, result.stderr


def test_fetch_then_contests_json(runtime: Runtime, replay: ReplayServer) -> None:
    serve_all(replay)
    code, out, _ = cli(runtime, "fetch")
    assert code == 0, out
    for platform in PLATFORMS:
        assert platform in out
    code, out, _ = cli(runtime, "contests", "--json")
    assert code == 0
    rows = json.loads(out)
    expected = sorted(
        ((c.start, p, c.key) for p in PLATFORMS for c in expected_contests(p)),
        key=lambda item: item[0],
    )
    assert [(r["platform"], r["key"]) for r in rows] == [(p, k) for _, p, k in expected]
    for row in rows:
        assert set(row) == {
            "platform",
            "key",
            "name",
            "url",
            "start",
            "end",
            "duration_seconds",
            "status",
        }
        assert row["start"].endswith("Z")
        assert row["end"].endswith("Z")
    first_cf = next(r for r in rows if r["key"] == "2028")
    assert first_cf == {
        "platform": "codeforces",
        "key": "2028",
        "name": "Codeforces Round (Div. 2)",
        "url": "https://codeforces.com/contests/2028",
        "start": "2024-11-10T15:35:00Z",
        "end": "2024-11-10T17:35:00Z",
        "duration_seconds": 7200,
        "status": "scheduled",
    }


def test_contests_fetches_only_when_stale(runtime: Runtime, replay: ReplayServer) -> None:
    serve_all(replay)
    assert cli(runtime, "contests", "--platform", "atcoder")[0] == 0
    assert replay.hits("atcoder") == 1
    assert cli(runtime, "contests", "--platform", "atcoder")[0] == 0
    assert replay.hits("atcoder") == 1
    assert cli(runtime, "contests", "--platform", "atcoder", "--refresh")[0] == 0
    assert replay.hits("atcoder") == 2
    assert replay.hits("codeforces") == 0


def test_platform_names_are_accepted_in_any_case(runtime: Runtime, replay: ReplayServer) -> None:
    serve_all(replay)
    code, out, err = cli(runtime, "fetch", "--platform", "Codeforces", "-p", " ATCODER ")
    assert code == 0, err
    assert replay.hits("codeforces") == 1
    assert replay.hits("atcoder") == 1
    assert replay.hits("leetcode") == 0
    code, out, _ = cli(runtime, "contests", "--platform", "CodeChef", "--json")
    assert code == 0
    assert {row["platform"] for row in json.loads(out)} == {"codechef"}


def test_table_shows_local_times(runtime: Runtime, replay: ReplayServer) -> None:
    serve_all(replay)
    code, out, _ = cli(runtime, "contests", "--platform", "atcoder", "--within", "700")
    assert code == 0
    # abc462 starts 2026-06-13 21:00 JST = 17:30 in Asia/Kolkata (the configured zone)
    assert "2026-06-13 17:30 IST" in out
    assert "AtCoder" in out


def test_ics_output_parses(runtime: Runtime, replay: ReplayServer) -> None:
    serve_all(replay)
    code, out, _ = cli(runtime, "contests", "--ics", "--platform", "codechef")
    assert code == 0
    events = Calendar.from_ical(out.encode()).walk("VEVENT")
    assert {str(e["UID"]) for e in events} == {
        f"codechef-{c.key}@cpsync" for c in expected_contests("codechef")
    }


def test_failed_platform_sets_exit_code_and_shows_in_platforms(
    runtime: Runtime, replay: ReplayServer
) -> None:
    serve_all(replay)
    replay.serve("leetcode", Reply(503, b"<html>maintenance</html>"))
    code, out, _ = cli(runtime, "fetch")
    assert code == 1
    assert "HTTP 503" in out
    code, out, _ = cli(runtime, "platforms")
    assert code == 0
    leetcode_line = next(line for line in out.splitlines() if "leetcode" in line)
    assert "failing" in leetcode_line
    codeforces_line = next(line for line in out.splitlines() if "codeforces" in line)
    assert "ok" in codeforces_line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["contests", "--platform", "topcoder"], "unknown platform 'topcoder'"),
        (["fetch", "-p", "codeforces", "-p", "nope"], "unknown platform 'nope'"),
        (["contests", "--within", "-1"], "--within must be zero or more days"),
        (["contests", "--json", "--ics"], "choose one of --json and --ics"),
    ],
)
def test_bad_arguments_get_one_line_errors(runtime: Runtime, args: list[str], message: str) -> None:
    code, out, err = cli(runtime, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1


def test_real_process_uses_base_url_settings(
    replay: ReplayServer, settings: Settings, tmp_path: Path
) -> None:
    """The installed console script, configured only through CPSYNC_* variables."""
    serve_all(replay)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPSYNC_")}
    env |= {f"CPSYNC_{name.upper()}": value for name, value in replay.base_url_env().items()}
    env |= {"CPSYNC_DATABASE_URL": settings.resolved_database_url(), "CPSYNC_HTTP_MAX_RETRIES": "0"}
    env |= {"CPSYNC_CODEFORCES_INTERVAL_SECONDS": "0.001"}  # every platform on one paced host
    script = Path(sys.executable).with_name("cpsync")
    fetch = subprocess.run(
        [script, "fetch"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    # The real process runs on the real clock: once a recording's contests have all ended,
    # its platform reports the malformed item left (exit 1); what matters here is that every
    # platform was asked at the configured address and answered in the table.
    assert fetch.returncode in (0, 1), fetch.stdout + fetch.stderr
    assert "Traceback" not in fetch.stderr
    assert all(name in fetch.stdout for name in PLATFORMS), fetch.stdout
    assert all(replay.hits(p) == 1 for p in PLATFORMS)
    listing = subprocess.run(
        [script, "contests", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert listing.returncode == 0, listing.stderr
    assert all(replay.hits(p) == 1 for p in PLATFORMS)  # fresh data: no second fetch
    rows = json.loads(listing.stdout)
    # Only the contests still ahead of today's real clock remain.
    assert all(row["end"] > "2026-11-22" for row in rows)
