"""The student table as CSV, and CSV uploads that add or update many students.

Export writes every student the viewer sees. A cell that a spreadsheet would run as a
formula (starting with = + - @, tab or CR) is prefixed with an apostrophe, except a
phone-like number; import removes that prefix again, so a file round-trips.

Import: one row per student; `id` (from an export) or else the handle picks an existing
student of the coach to update, otherwise the row adds one. Every row is validated on
its own; bad rows are reported with their line number and the good ones are kept. All
new or changed handles are checked with Codeforces in one batched lookup.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from cpsync.accounts.models import User
from cpsync.students.models import Student
from cpsync.students.schemas import StudentInput, field_errors
from cpsync.students.service import (
    DUPLICATE_HANDLE,
    UNCHECKED_HANDLE,
    UNKNOWN_HANDLE,
    StudentService,
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
_NUMBER = re.compile(r"^[+-]?[0-9][0-9 ().\-]*$")
_RISKY = ("=", "+", "-", "@", "\t", "\r")
_TRUE = {"yes", "true", "1", "on", "y"}
_FALSE = {"no", "false", "0", "off", "n"}


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_RISKY) and not _NUMBER.match(text):
        return "'" + text
    return text


def unsafe_cell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_RISKY) else text


def export_csv(students: Iterable[Student]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for s in students:
        synced = s.last_synced_at.isoformat() if s.last_synced_at else ""
        row = [s.id, s.name, s.email, s.phone, s.handle, s.group_name, s.timezone]
        row += ["yes" if s.reminders_enabled else "no", s.rating, s.max_rating, s.rank]
        row += [s.max_rank, synced, s.reminders_sent, s.last_sync_error]
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


@dataclass
class ImportResult:
    added: list[Student] = field(default_factory=list)
    updated: list[Student] = field(default_factory=list)
    resync: list[Student] = field(default_factory=list)
    errors: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    student_id: int | None
    values: StudentInput


def decode_upload(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_rows(text: str) -> tuple[list[_Row], list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "handle" not in header or "name" not in header:
        return [], [(1, {"file": "The first line must name the columns, with name and handle."})]
    reader.fieldnames = header
    rows: list[_Row] = []
    errors: list[tuple[int, dict[str, str]]] = []
    for position, raw in enumerate(reader):
        line = reader.line_num
        if position >= MAX_ROWS:
            errors.append((line, {"file": f"Only the first {MAX_ROWS} rows are read."}))
            break
        cells = {k: unsafe_cell((v or "").strip()) for k, v in raw.items() if k is not None}
        if not any(cells.values()):
            continue
        parsed = _parse_row(line, cells)
        if isinstance(parsed, _Row):
            rows.append(parsed)
        else:
            errors.append((line, parsed))
    return rows, errors


def _parse_row(line: int, cells: dict[str, str]) -> _Row | dict[str, str]:
    errors: dict[str, str] = {}
    reminders = cells.get("reminders", "").lower()
    if reminders and reminders not in _TRUE | _FALSE:
        errors["reminders"] = "Use yes or no."
    raw_id = cells.get("id", "")
    if raw_id and not raw_id.isdigit():
        errors["id"] = "An id is a whole number (leave it empty for a new student)."
    try:
        values = StudentInput(
            name=cells.get("name", ""),
            email=cells.get("email", ""),
            phone=cells.get("phone", ""),
            handle=cells.get("handle", ""),
            group=cells.get("group", ""),
            timezone=cells.get("timezone", ""),
            reminders_enabled=reminders not in _FALSE,
        )
    except ValidationError as error:
        return field_errors(error) | errors
    if errors:
        return errors
    return _Row(line, int(raw_id) if raw_id else None, values)


async def import_csv(service: StudentService, coach: User, text: str) -> ImportResult:
    result = ImportResult()
    rows, result.errors = parse_rows(text)
    existing = await service.existing_by_key(coach.id)
    by_id = {student.id: student for student in existing.values()}
    seen: set[str] = set()
    planned: list[tuple[_Row, Student | None]] = []
    for row in rows:
        key = row.values.handle.casefold()
        target = by_id.get(row.student_id) if row.student_id else None
        target = target or existing.get(key)
        if key in seen:
            result.errors.append((row.line, {"handle": "This handle appears twice in the file."}))
            continue
        other = existing.get(key)
        if target is not None and other is not None and other.id != target.id:
            result.errors.append((row.line, {"handle": DUPLICATE_HANDLE}))
            continue
        seen.add(key)
        planned.append((row, target))
    to_check = [
        r.values.handle
        for r, t in planned
        if t is None or t.handle_key != r.values.handle.casefold()
    ]
    canonical = await service.resolve_handles(to_check)
    zone = await service.default_zone(coach.id)
    for row, target in planned:
        await _apply(service, coach, row, target, canonical, zone, existing, result)
    result.errors.sort()
    return result


async def _apply(
    service: StudentService,
    coach: User,
    row: _Row,
    target: Student | None,
    canonical: dict[str, str | None] | None,
    zone: str,
    existing: dict[str, Student],
    result: ImportResult,
) -> None:
    key = row.values.handle.casefold()
    handle = row.values.handle
    if target is None or target.handle_key != key:
        if canonical is None:
            result.errors.append((row.line, {"handle": UNCHECKED_HANDLE}))
            return
        found = canonical.get(key)
        if found is None:
            result.errors.append((row.line, {"handle": UNKNOWN_HANDLE}))
            return
        other = existing.get(found.casefold())
        if other is not None and other is not target:
            result.errors.append((row.line, {"handle": tracked_as(other.handle)}))
            return
        handle = found
    saved = await service.save_imported(coach, target, row.values, handle, zone)
    existing[saved.student.handle_key] = saved.student  # later rows see this claim
    (result.updated if target is not None else result.added).append(saved.student)
    if saved.needs_sync:
        result.resync.append(saved.student)


def report_lines(errors: Sequence[tuple[int, dict[str, str]]]) -> list[str]:
    return [f"Line {line}: " + "; ".join(f"{k}: {v}" for k, v in e.items()) for line, e in errors]
