"""The pure side of CSV import and export: cell escaping and the per-row plan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cpsync.students.csv_io import (
    Current,
    Outcome,
    escape_cell,
    handles_to_check,
    parse_rows,
    plan_rows,
    unescape_cell,
)


def current(student_id: int, handle: str, **fields: object) -> Current:
    values: dict[str, object] = {
        "name": handle.title(),
        "email": "",
        "phone": "",
        "group": "",
        "timezone": "UTC",
        "reminders_enabled": True,
    } | fields
    return Current(id=student_id, handle=handle, **values)  # type: ignore[arg-type]


@given(st.text())
def test_unescape_undoes_escape(text: str) -> None:
    assert unescape_cell(escape_cell(text)) == text


@given(st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'=", "''+"]), st.text())
def test_a_formula_start_is_never_the_first_character(start: str, rest: str) -> None:
    escaped = escape_cell(start + rest)
    assert escaped.startswith("'")


def test_plain_cells_are_left_as_they_are() -> None:
    assert escape_cell("Gennady") == "Gennady"
    assert escape_cell("'quoted'") == "'quoted'"
    assert unescape_cell("'quoted'") == "'quoted'"
    assert escape_cell(None) == ""


def test_only_present_columns_change_and_an_empty_zone_means_the_coachs() -> None:
    stored = [current(1, "tourist", phone="+7 900", group="Div 1", timezone="Asia/Tokyo")]
    parsed = parse_rows("handle,name,timezone,phone\ntourist,Gennady,,\n")
    [plan] = plan_rows(parsed, stored, {}, "Asia/Kolkata")
    assert plan.outcome is Outcome.UPDATED
    changed = {(c.field, c.old, c.new) for c in plan.changes}
    assert changed == {
        ("name", "Tourist", "Gennady"),
        ("timezone", "Asia/Tokyo", "Asia/Kolkata"),
        ("phone", "+7 900", ""),
    }
    assert plan.values["group"] == "Div 1"


def test_renamed_handles_and_double_claims_are_row_errors() -> None:
    stored = [current(1, "-Absam-"), current(2, "tourist")]
    text = (
        "id,name,handle\n"
        ",Old,OldAbsam\n"  # Codeforces answers -Absam-: already tracked
        ",New,fresh_one\n"
        ",Again,FreshAlias\n"  # a second spelling of the same account
        "2,Renamed,tourist_2\n"
        "2,Twice,tourist_3\n"  # the same student updated by two rows
        ",Dup,fresh_one\n"
    )
    canonical = {
        "oldabsam": "-Absam-",
        "fresh_one": "fresh_one",
        "freshalias": "fresh_one",
        "tourist_2": "tourist_2",
        "tourist_3": "tourist_3",
    }
    parsed = parse_rows(text)
    assert handles_to_check(parsed.rows, stored) == [
        "OldAbsam",
        "fresh_one",
        "FreshAlias",
        "tourist_2",
        "tourist_3",
        "fresh_one",
    ]
    plans = {plan.line: plan for plan in plan_rows(parsed, stored, canonical, "UTC")}
    assert "already tracked as -Absam-" in plans[2].errors["handle"]
    assert plans[3].outcome is Outcome.ADDED
    assert plans[4].errors["handle"] == "Line 3 already has this Codeforces user."
    assert plans[5].outcome is Outcome.UPDATED
    assert plans[5].handle_changed
    assert plans[6].errors["handle"] == "Line 5 already updates this student."
    assert plans[7].errors["handle"] == "This handle appears twice in the file (line 3)."


def test_unchecked_and_unknown_handles_are_told_apart() -> None:
    parsed = parse_rows("name,handle\nA,ghost\nB,unanswered\nC,\n")
    plans = plan_rows(parsed, [], {"ghost": None}, "UTC")
    assert [plan.errors for plan in plans] == [
        {"handle": "Codeforces has no user with this handle."},
        {"handle": "Codeforces could not be reached to check this handle; try again shortly."},
        {"handle": "A Codeforces handle has 3 to 24 letters, digits, _ . or -."},
    ]


def test_a_file_without_a_handle_column_is_refused() -> None:
    parsed = parse_rows("name,email\nA,a@example.com\n")
    assert parsed.rows == []
    assert parsed.errors == [
        (1, {"file": "The first line must name the columns, handle among them."})
    ]
