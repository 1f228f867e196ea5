"""Account tables: users, server-side sessions, preferences, feed tokens, OAuth links,
emailed one-time tokens (verification, reset, invites) and the sign-up mode."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cpsync.db import Base, UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    COACH = "coach"
    MEMBER = "member"


class SignupMode(StrEnum):
    OPEN = "open"
    INVITE = "invite"
    CLOSED = "closed"


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a label
    INVITE = "invite"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # None for accounts that only sign in with Google.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # None until the owner follows the emailed link (or Google vouches for the address).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set by an admin: no sign-in, no session.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class EmailToken(Base):
    """A single-use link sent by email. Only the SHA-256 of the token is stored.

    Verification and reset tokens belong to a user; an invite names the address and the
    role the new account gets (`user_id` is the admin who issued it)."""

    __tablename__ = "email_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SiteSetting(Base):
    """Deployment-wide choices an admin makes in the app (e.g. `signup_mode`)."""

    __tablename__ = "site_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserSession(Base):
    """One signed-in browser. The cookie holds a random id; only its SHA-256 is stored."""

    __tablename__ = "user_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Preferences(Base):
    """What a user's calendar shows; see `cpsync.accounts.preferences.matches`."""

    __tablename__ = "preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    platforms: Mapped[list[str]] = mapped_column(JSON)
    max_duration_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    exclude_pattern: Mapped[str] = mapped_column(String(200), default="")
    hour_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hour_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    weekdays: Mapped[list[int]] = mapped_column(JSON)
    reminder_minutes: Mapped[list[int]] = mapped_column(JSON)
    color: Mapped[str] = mapped_column(String(2), default="9")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def as_dict(self) -> dict[str, Any]:
        return {
            "platforms": list(self.platforms),
            "max_duration_hours": self.max_duration_hours,
            "exclude_pattern": self.exclude_pattern,
            "hour_from": self.hour_from,
            "hour_to": self.hour_to,
            "weekdays": list(self.weekdays),
            "reminder_minutes": list(self.reminder_minutes),
            "color": self.color,
            "timezone": self.timezone,
        }


class FeedToken(Base):
    """A user's personal ICS feed token: looked up by hash, kept encrypted to show again."""

    __tablename__ = "feed_tokens"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OAuthLink(Base):
    """A Google account linked to a user, with its refresh token encrypted."""

    __tablename__ = "oauth_links"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    scopes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
