"""Recorded Codeforces answers for the student-tracking tests, and small builders."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The recordings live beside the repository (/work/shared next to /work/main).
SHARED = Path(__file__).resolve().parents[3] / "shared"
RECORDINGS = SHARED / "fixtures" / "codeforces"
OWN = Path(__file__).resolve().parents[1] / "fixtures" / "students"


def recordings(pattern: str) -> list[Path]:
    """Recorded files matching the pattern, sorted; empty when /work/shared is absent."""
    return sorted(RECORDINGS.glob(pattern))


def recording(name: str) -> Path:
    path = RECORDINGS / name
    if not path.is_file():
        pytest.skip(f"recording {name} not available (is {SHARED} present?)")
    return path


@dataclass(frozen=True)
class Cassette:
    """The one interaction a VCR cassette holds."""

    method: str
    uri: str
    status: int
    body: bytes


def read_cassette(path: Path) -> Cassette:
    yaml = pytest.importorskip("yaml", reason="pyyaml is needed to read VCR cassettes")
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    interaction = document["http_interactions"][0]
    response = interaction["response"]
    body = response["body"]
    raw = body.get("base64_string")
    return Cassette(
        method=interaction["request"]["method"].upper(),
        uri=interaction["request"]["uri"],
        status=int(response["status"]["code"]),
        body=base64.b64decode(raw) if raw is not None else body["string"].encode(),
    )
