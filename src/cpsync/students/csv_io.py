"""The student table as CSV, and the plan of what an uploaded CSV would change. Pure.

Export writes every student the viewer sees, every cell quoted. A cell that a
spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a leading
apostrophe (OWASP's advice for CSV injection); import removes exactly that prefix, so an
exported file imports back unchanged, `-Absam-` and `+91 ...` included.

Import: one row per student; `id` (from an export) or else the handle picks an existing
student of the coach to update, otherwise the row adds one. Only the columns the file
has are written: a missing column leaves that field alone, an empty cell clears it.
Every row is judged on its own (`plan_rows`); bad rows are reported with their line
number and the good ones are kept. New or changed handles must be checked with
Codeforces first (`handles_to_check`), and the spelling it answers with is stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from cpsync.students.models import Student
from cpsync.students.schemas import StudentPatch, field_errors
from cpsync.students.service import (
    DUPLICATE_HANDLE,
    UNCHECKED_HANDLE,
    UNKNOWN_HANDLE,
    tracked_as,
)

COLUMNS = [
    "id",
    "name",
    "email",
    "phone",
    "handle",
    "group",
    "timezone",
    "reminders",
    "rating",
    "max_rating",
    "rank",
    "max_rank",
    "last_synced_at",
    "reminders_sent",
    "last_sync_error",
]
MAX_ROWS = 5000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TRUE = {"yes", "true", "1", "on", "y"}
_FALSE = {"no", "false", "0", "off", "n"}
# CSV column -> StudentPatch field; what a coach may set from a file.
_EDITABLE = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "group": "group",
    "timezone": "timezone",
    "reminders": "reminders_enabled",
}


def column_of(field_name: str) -> str:
    """The CSV column a StudentPatch field is read from (and shown as)."""
    return next((c for c, f in _EDITABLE.items() if f == field_name), field_name)


# ---------------------------------------------------------------- export


def _needs_prefix(text: str) -> bool:
    # A text whose apostrophes are followed by a formula start is prefixed too (it
    # starts with the apostrophe that import removes), so that removing one apostrophe
    # always gives the original back.
    return text.lstrip("'").startswith(_FORMULA_START)


def escape_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if _needs_prefix(text) else text


def unescape_cell(text: str) -> str:
    return text[1:] if text.startswith("'") and _needs_prefix(text[1:]) else text


def export_csv(students: Iterable[Student]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    for s in students:
        synced = s.last_synced_at.isoformat() if s.last_synced_at else ""
        row = [s.id, s.name, s.email, s.phone, s.handle, s.group_name, s.timezone]
        row += ["yes" if s.reminders_enabled else "no", s.rating, s.max_rating, s.rank]
        row += [s.max_rank, synced, s.reminders_sent, s.last_sync_error]
        writer.writerow([escape_cell(cell) for cell in row])
    return buffer.getvalue()


# ---------------------------------------------------------------- parse


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    student_id: int | None
    patch: StudentPatch


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: list[CsvRow]
    errors: list[tuple[int, dict[str, str]]]
    bad_handles: dict[int, str] = field(default_factory=dict)  # line -> handle cell


def decode_upload(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_rows(text: str) -> ParsedFile:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "handle" not in header:
        return ParsedFile(
            [], [(1, {"file": "The first line must name the columns, handle among them."})]
        )
    reader.fieldnames = header
    parsed = ParsedFile([], [])
    for position, raw in enumerate(reader):
        line = reader.line_num
        if position >= MAX_ROWS:
            parsed.errors.append((line, {"file": f"Only the first {MAX_ROWS} rows are read."}))
            break
        cells = {k: unescape_cell((v or "").strip()) for k, v in raw.items() if k is not None}
        if not any(cells.values()):
            continue
        row = _parse_row(line, cells)
        if isinstance(row, CsvRow):
            parsed.rows.append(row)
        else:
            parsed.errors.append((line, row))
            parsed.bad_handles[line] = cells.get("handle", "")
    return parsed


def _parse_row(line: int, cells: dict[str, str]) -> CsvRow | dict[str, str]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"handle": cells.get("handle", "")}
    for column, name in _EDITABLE.items():
        if column in cells:
            values[name] = cells[column]
    if "reminders" in cells:
        reminders = cells["reminders"].lower()
        if reminders and reminders not in _TRUE | _FALSE:
            errors["reminders"] = "Use yes or no."
        values["reminders_enabled"] = reminders not in _FALSE
    if values.get("name") == "":
        errors["name"] = "A student needs a name; this cell is empty."
        del values["name"]
    raw_id = cells.get("id", "")
    if raw_id and not raw_id.isdigit():
        errors["id"] = "An id is a whole number (leave it empty for a new student)."
    try:
        patch = StudentPatch(**values)
    except ValidationError as error:
        return field_errors(error) | errors
    if errors:
        return errors
    return CsvRow(line, int(raw_id) if raw_id else None, patch)


# ---------------------------------------------------------------- plan


class Outcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Current:
    """What is stored for one of the coach's students, in the form's terms."""

    id: int
    handle: str
    name: str
    email: str
    phone: str
    group: str
    timezone: str
    reminders_enabled: bool

    @classmethod
    def of(cls, student: Student) -> Current:
        return cls(
            id=student.id,
            handle=student.handle,
            name=student.name,
            email=student.email,
            phone=student.phone,
            group=student.group_name,
            timezone=student.timezone,
            reminders_enabled=student.reminders_enabled,
        )

    @property
    def key(self) -> str:
        return self.handle.casefold()


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class RowPlan:
    """What one row does. `values` (every field, handle included) is what gets stored."""

    line: int
    handle: str
    outcome: Outcome
    student_id: int | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def handle_changed(self) -> bool:
        return any(change.field == "handle" for change in self.changes)


# The fields a new student starts with when the file has no column for them.
_FRESH = {"email": "", "phone": "", "group": "", "timezone": "", "reminders_enabled": True}
_FIELDS = ("handle", "name", "email", "phone", "group", "timezone", "reminders_enabled")


def handles_to_check(rows: Sequence[CsvRow], existing: Sequence[Current]) -> list[str]:
    """Handles that are not already stored (as typed): new students and changed handles."""
    by_id = {student.id: student for student in existing}
    stored = {student.key for student in existing}
    wanted: list[str] = []
    for row in rows:
        key = row.patch.handle.casefold()
        target = by_id.get(row.student_id) if row.student_id else None
        if key not in stored or (target is not None and target.key != key):
            wanted.append(row.patch.handle)
    return wanted


def plan_rows(
    parsed: ParsedFile,
    existing: Sequence[Current],
    canonical: Mapping[str, str | None],
    default_zone: str,
) -> list[RowPlan]:
    """Each row's outcome, in line order.

    `canonical`: casefolded handle -> Codeforces' spelling, None when it has no such
    user; a handle missing from it could not be checked.
    """
    planner = _Planner(existing, canonical, default_zone)
    plans = [planner.plan(row) for row in parsed.rows]
    plans += [
        RowPlan(line, parsed.bad_handles.get(line, ""), Outcome.ERROR, errors=errors)
        for line, errors in parsed.errors
    ]
    return sorted(plans, key=lambda plan: plan.line)


class _Planner:
    def __init__(
        self, existing: Sequence[Current], canonical: Mapping[str, str | None], zone: str
    ) -> None:
        self._by_id = {student.id: student for student in existing}
        self._by_key = {student.key: student for student in existing}
        self._canonical = canonical
        self._zone = zone
        self._typed: dict[str, int] = {}  # handle as typed (casefolded) -> line
        self._claimed: dict[str, int] = {}  # stored handle key -> line that takes it
        self._targets: dict[int, int] = {}  # student id -> line that updates it

    def plan(self, row: CsvRow) -> RowPlan:
        handle = row.patch.handle
        key = handle.casefold()
        target = self._by_id.get(row.student_id) if row.student_id else None
        target = target or self._by_key.get(key)
        error = self._conflict(row, key, target)
        stored = handle
        if error is None:
            stored, error = self._stored_handle(handle, target)
        if error is None:
            error = self._taken(row, stored.casefold(), key, target)
        if error is not None:
            return RowPlan(row.line, handle, Outcome.ERROR, errors={"handle": error})
        if target is None and row.patch.name is None:
            errors = {"name": "A new student needs a name."}
            return RowPlan(row.line, handle, Outcome.ERROR, errors=errors)
        self._typed[key] = row.line
        self._claimed[stored.casefold()] = row.line
        if target is not None:
            self._targets[target.id] = row.line
        return self._outcome(row, stored, target)

    def _conflict(self, row: CsvRow, key: str, target: Current | None) -> str | None:
        if key in self._typed:
            return f"This handle appears twice in the file (line {self._typed[key]})."
        if target is not None and target.id in self._targets:
            return f"Line {self._targets[target.id]} already updates this student."
        other = self._by_key.get(key)
        if target is not None and other is not None and other.id != target.id:
            return DUPLICATE_HANDLE
        return None

    def _stored_handle(self, handle: str, target: Current | None) -> tuple[str, str | None]:
        key = handle.casefold()
        if target is not None and target.key == key:
            return target.handle, None
        if key not in self._canonical:
            return handle, UNCHECKED_HANDLE
        found = self._canonical[key]
        if found is None:
            return handle, UNKNOWN_HANDLE
        return found, None

    def _taken(self, row: CsvRow, stored_key: str, key: str, target: Current | None) -> str | None:
        owner = self._by_key.get(stored_key)
        if owner is not None and (target is None or owner.id != target.id):
            return tracked_as(owner.handle) if stored_key != key else DUPLICATE_HANDLE
        if stored_key in self._claimed:
            return f"Line {self._claimed[stored_key]} already has this Codeforces user."
        return None

    def _outcome(self, row: CsvRow, stored: str, target: Current | None) -> RowPlan:
        patch = row.patch.model_dump(exclude_unset=True)
        patch["handle"] = stored
        if "timezone" in patch and not patch["timezone"]:
            patch["timezone"] = self._zone  # an empty zone means the coach's
        if target is None:
            values = {**_FRESH, "timezone": self._zone, **patch}
            changes = tuple(
                Change(name, "", _shown(values[name])) for name in _FIELDS if values[name] != ""
            )
            return RowPlan(row.line, stored, Outcome.ADDED, None, values, changes)
        old = {name: getattr(target, name) for name in _FIELDS}
        values = {**old, **patch}
        changes = tuple(
            Change(name, _shown(old[name]), _shown(values[name]))
            for name in _FIELDS
            if values[name] != old[name]
        )
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
        return RowPlan(row.line, stored, outcome, target.id, values, changes)


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
