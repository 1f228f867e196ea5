"""The tree drawn in cpsync.errors' docstring is the tree in the code."""

from __future__ import annotations

import importlib
import re

import cpsync.errors

# "    │   ├── calendars.errors.PermanentCalendarError   comment" -> depth, dotted name
_NODE = re.compile(r"^(?P<indent>[ │]*)(?P<branch>[├└]── )?(?P<name>(?:[a-z_]+\.)*[A-Z]\w*)\b")


def _drawn_edges() -> list[tuple[str, str]]:
    """(parent, child) pairs of the drawing, each name qualified by its module."""
    docstring = cpsync.errors.__doc__ or ""
    drawing = [line[4:] for line in docstring.splitlines() if line.startswith("    ")]
    parents: dict[int, str] = {}
    edges = []
    for line in drawing:
        node = _NODE.match(line)
        if node is None:
            continue  # a comment carried on to the next line
        depth = (len(node["indent"]) + len(node["branch"] or "")) // 4
        name = node["name"]
        if "." not in name:  # a name without a module lives in its parent's module
            name = f"{parents[depth - 1].rpartition('.')[0] if depth else 'errors'}.{name}"
        parents[depth] = name
        if depth:
            edges.append((parents[depth - 1], name))
    return edges


def _resolve(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    found = getattr(importlib.import_module(f"cpsync.{module}"), name)
    assert isinstance(found, type)
    return found


def test_every_drawn_error_subclasses_its_drawn_parent() -> None:
    edges = _drawn_edges()

    assert len(edges) >= 15
    for parent, child in edges:
        assert issubclass(_resolve(child), _resolve(parent)), f"{child} is not a {parent}"
