"""The end-to-end recordings skip cleanly where ../shared/fixtures is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recordings import RECORDINGS, expected_contests, recording_reply


def test_a_missing_shared_recording_skips_instead_of_erroring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "shared" / "fixtures" / "codeforces" / "contest-list.json"
    monkeypatch.setitem(RECORDINGS, "codeforces", (missing, "application/json"))
    with pytest.raises(pytest.skip.Exception, match=r"contest-list\.json not available"):
        recording_reply("codeforces")
    with pytest.raises(pytest.skip.Exception, match=r"contest-list\.json not available"):
        expected_contests("codeforces")


def test_a_present_recording_is_served() -> None:
    reply = recording_reply("hackerrank")  # one of the repository's own recordings
    assert reply.body
    assert reply.headers["Content-Type"] == "application/json"
