"""Real `cpsync worker` processes for crash-recovery tests: started, and killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from cpsync.settings import Settings
from tests.conftest import REPO_ROOT


def settings_of(env: dict[str, str]) -> Settings:
    """The Settings a process started with this environment reads."""
    names = {key.removeprefix("CPSYNC_").lower(): value for key, value in env.items()}
    return Settings.model_validate({k: v for k, v in names.items() if k in Settings.model_fields})


def start_worker(env: dict[str, str], workers: list[subprocess.Popen[bytes]]) -> None:
    workers.append(
        subprocess.Popen(
            [sys.executable, "-c", "from cpsync.cli import app; app()", "worker"],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the worker's whole process group (taskiq runs its tasks in a child)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
