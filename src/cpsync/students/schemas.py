"""Shapes of student input (forms, CSV rows and JSON alike) and of API output."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cpsync.students.models import Student
from cpsync.web.validation import field_errors as field_errors  # forms and CSV rows

# Codeforces handles: 3 to 24 letters, digits, underscore, dot or hyphen.
HANDLE = re.compile(r"^[A-Za-z0-9_.\-]{3,24}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ().\-]{3,40}$")


def _checked_handle(value: str) -> str:
    if not HANDLE.match(value):
        raise ValueError("A Codeforces handle has 3 to 24 letters, digits, _ . or -.")
    return value


def _checked_email(value: str) -> str:
    email = value.lower()
    if email and (len(email) > 320 or not _EMAIL.match(email)):
        raise ValueError("Enter an email address like name@example.com.")
    return email


def _checked_phone(value: str) -> str:
    if value and not _PHONE.match(value):
        raise ValueError("Use digits, spaces, + ( ) . or - only.")
    return value


def _checked_zone(value: str) -> str:
    if value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"Unknown time zone {value!r}; use e.g. Asia/Kolkata.") from exc
    return value


class StudentInput(BaseModel):
    """What a coach may set on a student: nothing else is ever assigned from input."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: str = ""
    phone: str = ""
    handle: str
    group: str = Field(default="", max_length=100)
    timezone: str = ""  # blank: the coach's zone
    reminders_enabled: bool = True

    _handle = field_validator("handle")(_checked_handle)
    _email = field_validator("email")(_checked_email)
    _phone = field_validator("phone")(_checked_phone)
    _zone = field_validator("timezone")(_checked_zone)


class StudentPatch(BaseModel):
    """One CSV row: only the columns the file has are set (None: leave the field alone).

    An empty cell in a present column clears that field; a name cannot be cleared.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    handle: str
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = None
    phone: str | None = None
    group: str | None = Field(default=None, max_length=100)
    timezone: str | None = None  # blank: the coach's zone
    reminders_enabled: bool | None = None

    _handle = field_validator("handle")(_checked_handle)
    _email = field_validator("email")(_checked_email)
    _phone = field_validator("phone")(_checked_phone)
    _zone = field_validator("timezone")(_checked_zone)


class StudentOut(BaseModel):
    id: int
    name: str
    email: str
    phone: str
    handle: str
    group: str
    timezone: str
    reminders_enabled: bool
    rating: int | None
    max_rating: int | None
    rank: str | None
    max_rank: str | None
    last_online_at: datetime | None
    last_synced_at: datetime | None
    last_sync_error: str | None
    reminders_sent: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, student: Student) -> StudentOut:
        return cls(
            id=student.id,
            name=student.name,
            email=student.email,
            phone=student.phone,
            handle=student.handle,
            group=student.group_name,
            timezone=student.timezone,
            reminders_enabled=student.reminders_enabled,
            rating=student.rating,
            max_rating=student.max_rating,
            rank=student.rank,
            max_rank=student.max_rank,
            last_online_at=student.last_online_at,
            last_synced_at=student.last_synced_at,
            last_sync_error=student.last_sync_error,
            reminders_sent=student.reminders_sent,
            created_at=student.created_at,
            updated_at=student.updated_at,
        )


class StudentList(BaseModel):
    students: list[StudentOut]
    total: int
    page: int
    per_page: int


class SyncStarted(BaseModel):
    status: str
    students: int
