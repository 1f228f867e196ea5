"""The package's shape: which module may import which.

The import-linter contracts live in pyproject.toml (`[tool.importlinter]`): `web/` is the
kernel and imports no domain; no domain imports the app, the worker or the CLI. The two
rules below need "any domain" patterns that contracts cannot say, so they are written here
on the same import graph (grimp, import-linter's engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
DOMAINS = frozenset({"accounts", "calendars", "contests", "students"})
# What one domain may use of another: its front door, never its pages, tasks or helpers.
PUBLIC = frozenset({"service", "repository", "schemas", "models", "deps"})

# Known crossings into another domain's internals, each to be removed when fixed.
KNOWN_CROSSINGS = frozenset(
    {
        # Calendar wiring still in calendars/web.py until helper "core" builds it from resources.
        "cpsync.accounts.account_routes -> cpsync.calendars.web",
        "cpsync.accounts.admin_routes -> cpsync.calendars.web",
        # Calendar sinks write events with the contests' ICS vocabulary (summaries, UIDs).
        "cpsync.calendars.caldav -> cpsync.contests.ics",
        "cpsync.calendars.feeds -> cpsync.contests.ics",
        "cpsync.calendars.desired -> cpsync.contests.ics",
        "cpsync.calendars.ical -> cpsync.contests.ics",
        # The calendar filters (accounts/preferences.py) still sit beside the Preferences table.
        "cpsync.calendars.desired -> cpsync.accounts.preferences",
        "cpsync.calendars.routes -> cpsync.accounts.preferences",
        "cpsync.calendars.feeds -> cpsync.accounts.preferences",
        # Link tokens are sealed with the accounts keyring.
        "cpsync.calendars.service -> cpsync.accounts.crypto",
    }
)


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("cpsync")


def _imports() -> Iterator[tuple[str, str]]:
    graph = _graph()
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            yield importer, imported


def _domain_and_part(module: str) -> tuple[str | None, str | None]:
    parts = module.split(".")
    domain = parts[1] if len(parts) > 1 and parts[1] in DOMAINS else None
    return domain, parts[2] if domain and len(parts) > 2 else None


def crossings_into_internals(imports: list[tuple[str, str]]) -> set[str]:
    """Imports from one domain into a module of another that is not its front door."""
    found = set()
    for importer, imported in imports:
        source, _ = _domain_and_part(importer)
        target, part = _domain_and_part(imported)
        if source and target and source != target and part is not None and part not in PUBLIC:
            found.add(f"{importer} -> {imported}")
    return found


def import_cycles(imports: list[tuple[str, str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan)."""
    edges: dict[str, list[str]] = {}
    for importer, imported in imports:
        edges.setdefault(importer, []).append(imported)
        edges.setdefault(imported, [])
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for other in edges[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            if group:
                cycles.append(sorted([module, *group]))

    for module in sorted(edges):
        if module not in order:
            visit(module)
    return cycles


def test_import_linter_contracts_hold() -> None:
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0


def test_no_import_cycles() -> None:
    assert import_cycles(list(_imports())) == []


def test_domains_meet_only_through_public_modules() -> None:
    found = crossings_into_internals(list(_imports()))
    assert found - KNOWN_CROSSINGS == set(), "import the other domain's service or repository"
    assert KNOWN_CROSSINGS - found == set(), "fixed: remove it from KNOWN_CROSSINGS"


def test_the_rules_catch_what_they_forbid() -> None:
    imports = [
        ("cpsync.contests.routes", "cpsync.calendars.tasks"),
        ("cpsync.contests.service", "cpsync.calendars.service"),
        ("cpsync.students.sync", "cpsync.students.tasks"),
        ("cpsync.students.tasks", "cpsync.students.sync"),
    ]
    assert crossings_into_internals(imports) == {"cpsync.contests.routes -> cpsync.calendars.tasks"}
    assert import_cycles(imports) == [["cpsync.students.sync", "cpsync.students.tasks"]]
