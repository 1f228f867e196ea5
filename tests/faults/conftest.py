"""Prints the fault trials' table at the end of the run (see test_fault_trials.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .support import ROWS, format_table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    table = format_table(ROWS)
    terminalreporter.write_sep("=", "fault trials (issue 14)")
    terminalreporter.write_line(table)
    path = os.environ.get("CPSYNC_FAULT_TABLE")
    if path:
        Path(path).write_text(table + "\n")
