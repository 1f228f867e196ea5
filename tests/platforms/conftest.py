"""Where the platform parser tests find their recorded and hand-written payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real recordings live beside the repository (/work/shared next to /work/main),
# never inside it; tests that need them skip when the tree is absent.
SHARED_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
OWN_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def shared_files(platform: str, pattern: str) -> list[Path]:
    """Recorded files for one platform, sorted; empty when the recordings are absent."""
    return sorted((SHARED_FIXTURES / platform).glob(pattern))


def own_files(platform: str, pattern: str = "*.json") -> list[Path]:
    return sorted((OWN_FIXTURES / platform).glob(pattern))


def own_file(platform: str, name: str) -> bytes:
    return (OWN_FIXTURES / platform / name).read_bytes()


def shared_file(relative: str) -> Path:
    """One named recording, or a clean skip when the recordings are not available."""
    path = SHARED_FIXTURES / relative
    if not path.is_file():
        pytest.skip(f"recording {relative} not available")
    return path
