"""What admins do to accounts, and a user's own account deletion.

Deleting an account removes everything it owns: its calendar links are disconnected
through the calendars service (which forgets their stored credentials), then the user row
goes with the coach's student sync history, and the database cascades take sessions,
preferences, feed token, Google links, emailed tokens, calendar rows and the coach's
students with all their data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.credentials import INVITE_TTL, SIGNUP_MODE, CredentialService
from cpsync.accounts.mail import AccountMail
from cpsync.accounts.models import EmailToken, Role, SignupMode, SiteSetting, TokenPurpose, User
from cpsync.accounts.passwords import verify_password
from cpsync.accounts.repository import AccountRepository
from cpsync.accounts.service import AccountError, AccountService
from cpsync.calendars.repository import CalendarRepository
from cpsync.clock import Clock
from cpsync.notify.email import Email
from cpsync.students.repository import StudentRepository


class CalendarUnlinker(Protocol):
    """The calendars service's way to drop a link and the credentials it holds."""

    async def disconnect(self, user_id: int, link_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Deletion:
    """What to undo outside the database when an account goes."""

    calendar_link_ids: list[int]
    google_tokens: list[str]  # to revoke at Google once the account is gone


class ConfirmationError(AccountError):
    status_code = 422


class Administration:
    def __init__(
        self,
        session: AsyncSession,
        accounts: AccountService,
        credentials: CredentialService,
        clock: Clock,
        mail: AccountMail,
    ) -> None:
        self._session = session
        self._repo = AccountRepository(session)
        self._accounts = accounts
        self._credentials = credentials
        self._clock = clock
        self._mail = mail

    # Sign-up mode and invites

    async def signup_mode(self) -> SignupMode:
        return await self._credentials.signup_mode()

    @property
    def email_enabled(self) -> bool:
        return self._credentials.email_enabled

    async def set_signup_mode(self, mode: SignupMode) -> None:
        now = self._clock()
        stored = await self._repo.site_setting(SIGNUP_MODE)
        if stored is None:
            self._repo.add(SiteSetting(name=SIGNUP_MODE, value=mode, updated_at=now))
        else:
            stored.value, stored.updated_at = mode, now
        await self._repo.flush()

    async def invite(self, admin: User, email: str, role: Role) -> tuple[str, Email]:
        """A single-use invite link for `email` with `role`, and the email carrying it."""
        if await self._repo.user_by_email(email) is not None:
            raise AccountError("This address already has an account.", status_code=409)
        token = await self._credentials.issue_invite(admin, email, role)
        days = INVITE_TTL.days
        return self._mail.invite_url(token), self._mail.invite(email, token, role, days)

    async def pending_invites(self) -> Sequence[EmailToken]:
        return await self._repo.pending_invites(self._clock())

    async def revoke_invite(self, token_hash: str) -> None:
        invite = await self._repo.email_token(token_hash)
        if invite is not None and invite.purpose == TokenPurpose.INVITE:
            await self._repo.delete_email_token(token_hash)

    # Disabling and deleting

    async def set_disabled(self, admin: User, user_id: int, disabled: bool) -> User:
        """A disabled user cannot sign in and every session of theirs ends now."""
        user = await self._user(user_id)
        if user.id == admin.id and disabled:
            raise AccountError("You cannot disable your own account.", status_code=409)
        if disabled and not user.disabled:
            await self._accounts.ensure_another_admin(user, "disabled")
            user.disabled_at = self._clock()
            await self._accounts.end_all_sessions(user.id)
        elif not disabled:
            user.disabled_at = None
        user.updated_at = self._clock()
        return user

    async def deletable(self, user_id: int) -> User:
        """The user, if deleting them leaves an admin who can sign in."""
        user = await self._user(user_id)
        await self._accounts.ensure_another_admin(user, "deleted")
        return user

    async def confirm_own_deletion(self, user: User, password: str, email: str) -> None:
        """The owner confirms with their password, or (no password: Google) their address."""
        if user.password_hash is not None:
            if not verify_password(user.password_hash, password):
                raise ConfirmationError("That is not your password.")
        elif email.strip().lower() != user.email:
            raise ConfirmationError("Type your email address exactly as shown.")
        await self.deletable(user.id)

    async def plan_deletion(self, user: User) -> Deletion:
        links = await CalendarRepository(self._session).links_of(user.id)
        google_tokens = await self._accounts.google_refresh_tokens(user.id)
        return Deletion([link.id for link in links], google_tokens)

    async def delete(self, user: User, plan: Deletion, calendars: CalendarUnlinker) -> None:
        """Disconnect the calendars, then delete the user; cascades take the rest.

        The calendars service writes in its own transaction: the caller commits before,
        so on SQLite (one writer) it does not wait behind this request's own writes."""
        for link_id in plan.calendar_link_ids:
            await calendars.disconnect(user.id, link_id)
        await StudentRepository(self._session).delete_runs_of(user.id)
        await self._repo.delete_user(user)

    async def _user(self, user_id: int) -> User:
        user = await self._repo.user_by_id(user_id)
        if user is None:
            raise AccountError("No such user.", status_code=404)
        return user
