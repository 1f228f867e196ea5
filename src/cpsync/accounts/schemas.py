"""Shapes of account input (forms and JSON alike) and output, with their validation."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cpsync.accounts.models import Role
from cpsync.accounts.preferences import (
    COLOR_IDS,
    MAX_REMINDER_MINUTES,
    MAX_REMINDERS,
    PatternError,
    check_pattern,
    clean_reminders,
)
from cpsync.platforms.registry import PLATFORMS
from cpsync.web.validation import field_errors as field_errors  # every form's messages

# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise ValueError("Enter an email address like name@example.com.")
    return email


def check_password(value: str) -> str:
    if len(value) < MIN_PASSWORD:
        raise ValueError(f"Use at least {MIN_PASSWORD} characters.")
    if len(value) > MAX_PASSWORD:
        raise ValueError(f"Use at most {MAX_PASSWORD} characters.")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class SignupForm(_Input):
    email: str
    password: str
    password_confirm: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)

    @model_validator(mode="after")
    def _same(self) -> SignupForm:
        if self.password != self.password_confirm:
            raise PydanticFieldError("password_confirm", "The passwords do not match.")
        return self


class NewPasswordForm(_Input):
    """A new password typed twice (reset and change)."""

    password: str
    password_confirm: str

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password(value)

    @model_validator(mode="after")
    def _same(self) -> NewPasswordForm:
        if self.password != self.password_confirm:
            raise PydanticFieldError("password_confirm", "The passwords do not match.")
        return self


class ChangePasswordForm(NewPasswordForm):
    current_password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]


class EmailForm(_Input):
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)


class SigninForm(_Input):
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]
    next: str = ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return value.strip().lower()


class RoleForm(_Input):
    role: Role


class InviteForm(EmailForm):
    role: Role = Role.MEMBER


PlatformName = Literal[
    "codeforces", "leetcode", "codechef", "atcoder", "hackerrank", "geeksforgeeks", "code360"
]
assert set(get_args(PlatformName)) == set(PLATFORMS)


class PreferencesInput(_Input):
    """A user's calendar filters and reminders, from the form or the JSON API."""

    platforms: list[PlatformName] = Field(min_length=1, max_length=len(PLATFORMS))
    max_duration_hours: float | None = Field(default=None, gt=0, le=24 * 31)
    exclude_pattern: str = Field(default="", max_length=200)
    hour_from: int | None = Field(default=None, ge=0, le=23)
    hour_to: int | None = Field(default=None, ge=0, le=23)
    weekdays: list[int] = Field(default_factory=list, max_length=7)
    reminder_minutes: list[int] = Field(default_factory=list, max_length=MAX_REMINDERS)
    color: str = "9"
    timezone: str = "UTC"

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[PlatformName]) -> list[PlatformName]:
        return [name for name in get_args(PlatformName) if name in value]

    @field_validator("exclude_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            check_pattern(value)
        except PatternError as exc:
            raise ValueError(f"Pattern rejected: {exc}.") from exc
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("Weekdays are 0 (Monday) to 6 (Sunday).")
        return sorted(set(value))

    @field_validator("reminder_minutes")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        if any(minutes < 0 or minutes > MAX_REMINDER_MINUTES for minutes in value):
            raise ValueError(f"Reminders are 0 to {MAX_REMINDER_MINUTES} minutes before the start.")
        return clean_reminders(value)

    @field_validator("color")
    @classmethod
    def _color(cls, value: str) -> str:
        if value not in COLOR_IDS:
            raise ValueError("Choose one of the listed colours.")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError("Unknown time zone.") from exc
        return value

    @model_validator(mode="after")
    def _hours(self) -> PreferencesInput:
        if (self.hour_from is None) != (self.hour_to is None):
            raise PydanticFieldError("hour_to", "Give both hours, or neither.")
        if self.hour_from is not None and self.hour_from == self.hour_to:
            raise PydanticFieldError("hour_to", "The end hour must differ from the start hour.")
        return self


class PydanticFieldError(ValueError):
    """A model-level check that belongs next to one field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class PreferencesOut(BaseModel):
    platforms: list[str]
    max_duration_hours: float | None
    exclude_pattern: str
    hour_from: int | None
    hour_to: int | None
    weekdays: list[int]
    reminder_minutes: list[int]
    color: str
    timezone: str


class MeOut(BaseModel):
    id: int
    email: str
    display_name: str
    role: Role
    created_at: datetime


class FeedOut(BaseModel):
    feed_url: str
    webcal_url: str
    google_subscribe_url: str
