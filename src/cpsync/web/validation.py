"""Validation errors in words for people: one message per field, for every form.

Pydantic's own texts ("String should have at least 1 character", "Input should be
greater than 0.0") are written for developers. Every HTML form and the CSV import turn
a `ValidationError` into `{field: message}` here; the JSON API keeps pydantic's
structured errors for programs.

A validator's own `ValueError` message is already written for people and is kept; an
exception carrying a `field` attribute moves a model-level message onto that field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

# What to ask for when a field is empty: "Enter a name."
FIELD_NOUNS: dict[str, str] = {
    "name": "a name",
    "email": "an email address",
    "password": "a password",
    "current_password": "your current password",
    "password_confirm": "the password again",
    "handle": "a Codeforces handle",
    "url": "the calendar's address",
    "username": "the user name",
    "group": "a group",
    "phone": "a phone number",
    "timezone": "a time zone",
    "sync_cron": "a schedule",
    "inactive_days": "a number of days",
}
# Where a field's number has a unit, say it: "Enter a number of hours above 0."
FIELD_UNITS: dict[str, str] = {
    "max_duration_hours": "hours",
    "inactive_days": "days",
    "repeat_every_days": "days",
    "hour_from": "an hour",
    "hour_to": "an hour",
}
# Request parts that FastAPI puts before the field name in `loc`.
_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
_EMAIL_CHECK_PREFIX = "value is not a valid email address"


def field_errors(error: ValidationError) -> dict[str, str]:
    """One message per field (the first problem of each), keyed by field name."""
    return messages_by_field(error.errors())


def messages_by_field(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The same for FastAPI's `RequestValidationError.errors()` and pydantic's dicts."""
    messages: dict[str, str] = {}
    for item in errors:
        field, message = _field_of(item), human_message(item)
        messages.setdefault(field, message)
    return messages


def _field_of(item: Mapping[str, Any]) -> str:
    raised = (item.get("ctx") or {}).get("error")
    moved = getattr(raised, "field", None)
    if isinstance(moved, str) and moved:
        return moved
    names = [part for part in item.get("loc", ()) if isinstance(part, str)]
    if names and names[0] in _REQUEST_PARTS:
        names = names[1:]
    return names[0] if names else "form"


def human_message(item: Mapping[str, Any]) -> str:
    kind: str = item.get("type", "")
    context: Mapping[str, Any] = item.get("ctx") or {}
    field = _field_of(item)
    if kind == "value_error":
        raised = context.get("error")
        text = str(raised) if raised is not None else str(item.get("msg", ""))
        if text.startswith(_EMAIL_CHECK_PREFIX):
            return "Enter a valid email address."
        return text.removeprefix("Value error, ")
    if kind in ("missing", "string_too_short") and context.get("min_length", 1) <= 1:
        return f"Enter {FIELD_NOUNS.get(field, 'a value')}."
    if kind == "too_short" and context.get("min_length") == 1:
        return "Choose at least one."
    return _by_kind(kind, context, FIELD_UNITS.get(field, ""))


def _number(value: Any) -> str:
    """0.0 → "0", 2.5 → "2.5": numbers as people write them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _by_kind(kind: str, context: Mapping[str, Any], unit: str) -> str:
    subject = unit if unit.startswith("an ") else f"a number of {unit}" if unit else "a number"
    bounds = {key: _number(value) for key, value in context.items() if key in _BOUND_KEYS}
    template = _TEMPLATES.get(kind, "Check this value.")
    return template.format(**{**context, **bounds, "subject": subject})


_BOUND_KEYS = frozenset({"gt", "ge", "lt", "le", "min_length", "max_length"})
_TEMPLATES = {
    "string_too_short": "Use at least {min_length} characters.",
    "string_too_long": "Use at most {max_length} characters.",
    "too_short": "Choose at least {min_length}.",
    "too_long": "Choose at most {max_length}.",
    "greater_than": "Enter {subject} above {gt}.",
    "greater_than_equal": "Enter {subject} of at least {ge}.",
    "less_than": "Enter {subject} below {lt}.",
    "less_than_equal": "Enter {subject} up to {le}.",
    "int_parsing": "Enter a whole number.",
    "int_type": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "float_parsing": "Enter a number.",
    "float_type": "Enter a number.",
    "finite_number": "Enter a number.",
    "bool_parsing": "Choose yes or no.",
    "bool_type": "Choose yes or no.",
    "enum": "Choose one of the listed options.",
    "literal_error": "Choose one of the listed options.",
    "list_type": "Choose from the list.",
    "string_type": "Enter text.",
    "missing": "Fill in this field.",
}
