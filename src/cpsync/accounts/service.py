"""Account use cases. Services take a database session and never commit: routes do.

Errors:

    CpsyncError
    └── AccountError
        ├── EmailTakenError       sign-up with an email already registered (409)
        ├── NotSignedInError      no valid session (401)
        ├── ForbiddenError        signed in, but not allowed (403)
        ├── LastAdminError        demoting, disabling or deleting the only admin (409)
        ├── UnverifiedError       promoting an account whose address is unproven (409)
        └── GoogleSignInError     Google said no, or the answer cannot be trusted (400)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.crypto import KeyRing
from cpsync.accounts.keys import EncryptedColumn
from cpsync.accounts.models import FeedToken, OAuthLink, Preferences, Role, User, UserSession
from cpsync.accounts.passwords import hash_password, needs_rehash, verify_password
from cpsync.accounts.preferences import Filters
from cpsync.accounts.repository import AccountRepository
from cpsync.accounts.schemas import PreferencesInput
from cpsync.accounts.sessions import SessionPolicy, new_token, token_hash
from cpsync.clock import Clock
from cpsync.errors import CpsyncError
from cpsync.platforms.registry import PLATFORMS

FEED_PURPOSE = "feed_tokens.token_encrypted"
REFRESH_TOKEN_PURPOSE = "oauth_links.refresh_token_encrypted"  # noqa: S105 - a label
ACCOUNT_SECRETS = (
    EncryptedColumn(FeedToken, "token_encrypted", FEED_PURPOSE),
    EncryptedColumn(OAuthLink, "refresh_token_encrypted", REFRESH_TOKEN_PURPOSE),
)


DISABLED_MESSAGE = "This account has been disabled by an admin."


class AccountError(CpsyncError):
    status_code = 400


class EmailTakenError(AccountError):
    status_code = 409


class NotSignedInError(AccountError):
    status_code = 401


class ForbiddenError(AccountError):
    status_code = 403


class LastAdminError(AccountError):
    status_code = 409


class UnverifiedError(AccountError):
    status_code = 409


class GoogleSignInError(AccountError):
    status_code = 400


@dataclass(frozen=True, slots=True)
class ActiveSession:
    user: User
    session: UserSession


@dataclass(frozen=True, slots=True)
class GoogleProfile:
    subject: str
    email: str
    email_verified: bool
    name: str


def default_preferences(user_id: int, now: datetime, timezone: str = "UTC") -> Preferences:
    return Preferences(
        user_id=user_id,
        platforms=list(PLATFORMS),
        max_duration_hours=None,
        exclude_pattern="",
        hour_from=None,
        hour_to=None,
        weekdays=[],
        reminder_minutes=[30],
        color="9",
        timezone=timezone,
        updated_at=now,
    )


def filters_of(preferences: Preferences) -> Filters:
    return Filters(
        platforms=tuple(preferences.platforms),
        max_duration_hours=preferences.max_duration_hours,
        exclude_pattern=preferences.exclude_pattern,
        hour_from=preferences.hour_from,
        hour_to=preferences.hour_to,
        weekdays=tuple(preferences.weekdays),
    )


class AccountService:
    def __init__(
        self, session: AsyncSession, keyring: KeyRing, policy: SessionPolicy, clock: Clock
    ) -> None:
        self._repo = AccountRepository(session)
        self._keyring = keyring
        self._policy = policy
        self._clock = clock

    # Users

    async def bootstrap_needed(self) -> bool:
        return await self._repo.count_users() == 0

    async def users(self) -> Sequence[User]:
        return await self._repo.users()

    async def create_user(
        self,
        email: str,
        password: str | None,
        role: Role = Role.MEMBER,
        display_name: str = "",
        *,
        verified: bool = True,
    ) -> User:
        """A new account. `verified=False` only for self-service sign-up with email on:
        the CLI's admin, Google and invites vouch for the address."""
        if await self._repo.user_by_email(email) is not None:
            raise EmailTakenError("An account with this email already exists.")
        now = self._clock()
        user = User(
            email=email,
            display_name=display_name or email.split("@", 1)[0],
            password_hash=hash_password(password) if password is not None else None,
            role=role,
            created_at=now,
            updated_at=now,
            email_verified_at=now if verified else None,
        )
        self._repo.add(user)
        await self._repo.flush()
        self._repo.add(default_preferences(user.id, now))
        await self._repo.flush()
        return user

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user with these credentials; takes as long for an unknown email."""
        user = await self._repo.user_by_email(email)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            return None
        assert user.password_hash is not None
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user

    async def set_role(self, user_id: int, role: Role) -> User:
        """Change a role; the user's sessions end, so their next session id is a new one."""
        user = await self._repo.user_by_id(user_id)
        if user is None:
            raise AccountError("No such user.", status_code=404)
        if user.role == Role.ADMIN and role != Role.ADMIN:
            await self.ensure_another_admin(user, "demoted")
        if role != Role.MEMBER and not user.email_verified:
            raise UnverifiedError(
                "Coaches and admins need a confirmed email address; this one is not confirmed."
            )
        if user.role != role:
            user.role = role
            user.updated_at = self._clock()
            await self._repo.delete_sessions_of(user.id)
        return user

    async def ensure_another_admin(self, user: User, change: str) -> None:
        """LastAdminError when `user` is the only admin who can still sign in."""
        if user.role != Role.ADMIN or user.disabled:
            return
        admins = [u for u in await self._repo.users() if u.role == Role.ADMIN and not u.disabled]
        if len(admins) <= 1:
            raise LastAdminError(
                f"This is the last admin, so it cannot be {change}. Make someone else an "
                "admin first."
            )

    # Sessions

    async def start_session(self, user: User, replacing: str | None = None) -> str:
        """A fresh session id for `user`; the session it replaces (if any) ends."""
        if replacing:
            await self._repo.delete_session(token_hash(replacing))
        now = self._clock()
        await self._repo.delete_expired_sessions(
            now - self._policy.absolute, now - self._policy.idle, user.id
        )
        token = new_token()
        self._repo.add(
            UserSession(
                id_hash=token_hash(token),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
            )
        )
        await self._repo.flush()
        return token

    async def resume_session(self, token: str) -> ActiveSession | None:
        found = await self._repo.session_with_user(token_hash(token))
        if found is None:
            return None
        session, user = found
        now = self._clock()
        if user.disabled or self._policy.expired(session.created_at, session.last_seen_at, now):
            await self._repo.delete_session(session.id_hash)
            return None
        if self._policy.needs_touch(session.last_seen_at, now):
            await self._repo.touch_session(session.id_hash, now)
        return ActiveSession(user, session)

    async def end_session(self, token: str) -> None:
        await self._repo.delete_session(token_hash(token))

    async def end_all_sessions(self, user_id: int) -> None:
        await self._repo.delete_sessions_of(user_id)

    async def prune_sessions(self) -> None:
        now = self._clock()
        await self._repo.delete_expired_sessions(
            now - self._policy.absolute, now - self._policy.idle
        )

    # Preferences

    async def preferences(self, user: User) -> Preferences:
        stored = await self._repo.preferences(user.id)
        if stored is None:
            stored = default_preferences(user.id, self._clock())
            self._repo.add(stored)
            await self._repo.flush()
        return stored

    async def save_preferences(self, user: User, values: PreferencesInput) -> Preferences:
        stored = await self.preferences(user)
        for name, value in values.model_dump().items():
            setattr(stored, name, value)
        stored.updated_at = self._clock()
        await self._repo.flush()
        return stored

    # Feed tokens

    async def feed_token(self, user: User) -> FeedToken:
        """The user's feed token row, created on first use."""
        row = await self._repo.feed_token_of(user.id)
        return row if row is not None else await self._new_feed_token(user)

    async def regenerate_feed_token(self, user: User) -> FeedToken:
        await self._repo.delete_feed_token(user.id)
        await self._repo.flush()
        return await self._new_feed_token(user)

    async def _new_feed_token(self, user: User) -> FeedToken:
        token = secrets.token_urlsafe(32)
        row = FeedToken(
            user_id=user.id,
            token_hash=feed_token_hash(token),
            token_encrypted=self._keyring.encrypt(token, FEED_PURPOSE),
            created_at=self._clock(),
        )
        self._repo.add(row)
        await self._repo.flush()
        return row

    def reveal_feed_token(self, row: FeedToken) -> str:
        return self._keyring.decrypt(row.token_encrypted, FEED_PURPOSE)

    async def owner_of_feed_token(self, token: str) -> tuple[User, Preferences] | None:
        """Same work for a hit and a miss: one hash, one indexed query, one compare."""
        wanted = feed_token_hash(token)
        found = await self._repo.feed_owner(wanted)
        stored = found[0].token_hash if found is not None else "0" * 64
        if found is None or not hmac.compare_digest(stored, wanted) or found[1].disabled:
            return None
        _, user, preferences = found
        return user, preferences or default_preferences(user.id, self._clock())

    # Google

    async def google_refresh_tokens(self, user_id: int) -> list[str]:
        """The user's stored Google refresh tokens, decrypted (to revoke them)."""
        return [
            self._keyring.decrypt(link.refresh_token_encrypted, REFRESH_TOKEN_PURPOSE)
            for link in await self._repo.oauth_links_of(user_id)
            if link.refresh_token_encrypted
        ]

    async def sign_in_with_google(
        self,
        profile: GoogleProfile,
        refresh_token: str | None,
        scopes: str,
        *,
        may_create: bool = True,
    ) -> User:
        """`may_create` is False when sign-up is not open: only existing accounts."""
        if not profile.email_verified:
            raise GoogleSignInError("Google has not verified this email address.")
        now = self._clock()
        link = await self._repo.oauth_link("google", profile.subject)
        if link is None:
            user = await self._repo.user_by_email(profile.email) or await self._google_account(
                profile, may_create
            )
            if not user.email_verified:
                await self._take_over_unverified(user)
            link = OAuthLink(
                user_id=user.id,
                provider="google",
                subject=profile.subject,
                email=profile.email,
                scopes=scopes,
                created_at=now,
                updated_at=now,
            )
            self._repo.add(link)
        else:
            found = await self._repo.user_by_id(link.user_id)
            if found is None:
                raise GoogleSignInError("The linked account no longer exists.")
            user = found
        if user.disabled:
            raise GoogleSignInError(DISABLED_MESSAGE)
        link.email, link.updated_at = profile.email, now
        if refresh_token:
            # Google sends a refresh token only on consent; keep the old one otherwise.
            link.refresh_token_encrypted = self._keyring.encrypt(
                refresh_token, REFRESH_TOKEN_PURPOSE
            )
            link.scopes = scopes
        await self._repo.flush()
        return user

    async def _google_account(self, profile: GoogleProfile, may_create: bool) -> User:
        if not may_create:
            raise GoogleSignInError(
                "This site is not open for new accounts: ask an admin for an invite."
            )
        return await self.create_user(profile.email, None, display_name=profile.name)

    async def _take_over_unverified(self, user: User) -> None:
        """Google proves the address; whoever signed up with it unproven loses the
        password they chose and their sessions, so an address cannot be squatted."""
        user.password_hash = None
        user.email_verified_at = user.updated_at = self._clock()
        await self._repo.delete_sessions_of(user.id)


def feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
