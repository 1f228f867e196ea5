"""Sign-up, email verification, password reset and password change.

Every emailed token is 32 random bytes; only its SHA-256 is stored, it works once and it
expires. No answer depends on whether an address is registered: the caller gets the same
result either way, and the only difference is which email (if any) goes out afterwards.

What an unverified account may do: sign in and use its own calendar (preferences, feed,
calendar links), which reaches nobody else; a banner asks it to confirm. It cannot be made
a coach or an admin (their address receives students' and operators' mail, and a reset
link for a powerful account must land in a proven inbox), and Google sign-in with that
address takes the account over, dropping the unproven password (so nobody can squat an
address before its owner arrives). Without SMTP nothing can be confirmed: accounts start
verified and the admin vouches by choosing the sign-up mode.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.mail import AccountMail
from cpsync.accounts.models import EmailToken, Role, SignupMode, TokenPurpose, User
from cpsync.accounts.passwords import hash_password, verify_password
from cpsync.accounts.repository import AccountRepository
from cpsync.accounts.service import AccountError, AccountService
from cpsync.accounts.sessions import token_hash
from cpsync.clock import Clock
from cpsync.notify.email import Email

VERIFY_TTL = timedelta(hours=48)
RESET_TTL = timedelta(hours=1)
INVITE_TTL = timedelta(days=7)
# One reset or confirmation email per address per minute, however many clients ask:
# the per-client rate limit alone would let many clients flood someone's inbox.
EMAIL_COOLDOWN = timedelta(minutes=1)
SIGNUP_MODE = "signup_mode"


class InvalidLinkError(AccountError):
    status_code = 400

    def __init__(self) -> None:
        super().__init__(
            "This link has expired or was already used. Ask for a new one and use the newest email."
        )


class WrongPasswordError(AccountError):
    status_code = 422


class SignupClosedError(AccountError):
    status_code = 403


@dataclass(slots=True)
class SignupResult:
    """`signed_in` is set only when the account may start a session right away (an
    invite); otherwise every sign-up answers "check your inbox" or "now sign in"."""

    signed_in: User | None = None
    emails: list[Email] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MailPolicy:
    mail: AccountMail
    enabled: bool  # an SMTP server is configured


class CredentialService:
    def __init__(
        self,
        session: AsyncSession,
        accounts: AccountService,
        clock: Clock,
        policy: MailPolicy,
        default_mode: SignupMode,
    ) -> None:
        self._repo = AccountRepository(session)
        self._accounts = accounts
        self._clock = clock
        self._mail = policy.mail
        self._email_enabled = policy.enabled
        self._default_mode = default_mode

    @property
    def email_enabled(self) -> bool:
        return self._email_enabled

    async def signup_mode(self) -> SignupMode:
        stored = await self._repo.site_setting(SIGNUP_MODE)
        return SignupMode(stored.value) if stored is not None else self._default_mode

    # Sign-up

    async def sign_up(self, email: str, password: str, invite: str | None) -> SignupResult:
        mode = await self.signup_mode()
        if invite:
            return await self._sign_up_invited(invite, password, mode)
        if mode != SignupMode.OPEN:
            raise SignupClosedError(_closed_message(mode))
        if await self._repo.user_by_email(email) is not None:
            hash_password(password)  # the same work as creating the account
            if not self._email_enabled:
                return SignupResult()
            return SignupResult(emails=[self._mail.signup_attempt(email)])
        user = await self._accounts.create_user(email, password, verified=not self._email_enabled)
        if not self._email_enabled:
            return SignupResult()
        return SignupResult(emails=[await self._verification_email(user)])

    async def invitation(self, token: str) -> EmailToken:
        """The pending invite behind `token`, or InvalidLinkError."""
        return await self._valid(token, TokenPurpose.INVITE)

    async def _sign_up_invited(self, token: str, password: str, mode: SignupMode) -> SignupResult:
        if mode == SignupMode.CLOSED:
            raise SignupClosedError(_closed_message(mode))
        invite = await self._take(token, TokenPurpose.INVITE)
        if await self._repo.user_by_email(invite.email) is not None:
            raise AccountError("This address already has an account: sign in instead.")
        # The link went to this address (or the admin handed it over): it is vouched for.
        user = await self._accounts.create_user(invite.email, password, Role(invite.role))
        return SignupResult(signed_in=user)

    # Verification

    async def resend_verification(self, user: User) -> list[Email]:
        if user.email_verified or not self._email_enabled:
            return []
        if await self._recently_sent(TokenPurpose.VERIFY_EMAIL, user.id):
            return []
        return [await self._verification_email(user)]

    async def _verification_email(self, user: User) -> Email:
        await self._repo.delete_email_tokens(TokenPurpose.VERIFY_EMAIL, user.id)
        token = await self._issue(TokenPurpose.VERIFY_EMAIL, user.email, VERIFY_TTL, user.id)
        return self._mail.verify(user.email, token)

    async def check_verification(self, token: str) -> None:
        await self._valid(token, TokenPurpose.VERIFY_EMAIL)

    async def verify_email(self, token: str) -> User:
        row = await self._take(token, TokenPurpose.VERIFY_EMAIL)
        user = await self._user_of(row)
        user.email_verified_at = user.email_verified_at or self._clock()
        await self._repo.delete_email_tokens(TokenPurpose.VERIFY_EMAIL, user.id)
        return user

    # Password reset

    async def request_reset(self, email: str) -> list[Email]:
        """The reset email for a known, enabled address; nothing for any other."""
        user = await self._repo.user_by_email(email)
        if user is None or user.disabled or not self._email_enabled:
            return []
        if await self._recently_sent(TokenPurpose.RESET_PASSWORD, user.id):
            return []
        await self._repo.delete_email_tokens(TokenPurpose.RESET_PASSWORD, user.id)
        token = await self._issue(TokenPurpose.RESET_PASSWORD, user.email, RESET_TTL, user.id)
        return [self._mail.reset(user.email, token, int(RESET_TTL.total_seconds() // 60))]

    async def check_reset(self, token: str) -> None:
        await self._valid(token, TokenPurpose.RESET_PASSWORD)

    async def reset_password(self, token: str, password: str) -> User:
        """New password; every session of the account ends. Following the emailed link
        also proves the address."""
        row = await self._take(token, TokenPurpose.RESET_PASSWORD)
        user = await self._user_of(row)
        if user.disabled:
            raise InvalidLinkError()
        now = self._clock()
        user.password_hash = hash_password(password)
        user.email_verified_at = user.email_verified_at or now
        user.updated_at = now
        await self._repo.delete_email_tokens(TokenPurpose.RESET_PASSWORD, user.id)
        await self._repo.delete_sessions_of(user.id)
        return user

    # Password change

    async def change_password(self, user: User, current: str, new: str, session_token: str) -> None:
        """Needs the current password; the user's other sessions end."""
        if user.password_hash is None or not verify_password(user.password_hash, current):
            raise WrongPasswordError("That is not your current password.")
        user.password_hash = hash_password(new)
        user.updated_at = self._clock()
        await self._repo.delete_sessions_of(user.id, keep=token_hash(session_token))
        await self._repo.delete_email_tokens(TokenPurpose.RESET_PASSWORD, user.id)

    # Invites

    async def issue_invite(self, admin: User, email: str, role: Role) -> str:
        return await self._issue(TokenPurpose.INVITE, email, INVITE_TTL, admin.id, role)

    # Tokens

    async def _issue(
        self,
        purpose: TokenPurpose,
        email: str,
        ttl: timedelta,
        user_id: int | None,
        role: Role = Role.MEMBER,
    ) -> str:
        now = self._clock()
        await self._repo.delete_expired_email_tokens(now)
        token = secrets.token_urlsafe(32)
        self._repo.add(
            EmailToken(
                token_hash=token_hash(token),
                purpose=purpose,
                user_id=user_id,
                email=email,
                role=role,
                created_at=now,
                expires_at=now + ttl,
            )
        )
        await self._repo.flush()
        return token

    async def _recently_sent(self, purpose: TokenPurpose, user_id: int) -> bool:
        latest = await self._repo.latest_email_token(purpose, user_id)
        return latest is not None and latest.created_at > self._clock() - EMAIL_COOLDOWN

    async def _valid(self, token: str, purpose: TokenPurpose) -> EmailToken:
        wanted = token_hash(token)
        row = await self._repo.email_token(wanted)
        stored = row.token_hash if row is not None else "0" * 64
        if row is None or not hmac.compare_digest(stored, wanted):
            raise InvalidLinkError()
        if row.purpose != purpose or row.expires_at <= self._clock():
            raise InvalidLinkError()
        return row

    async def _take(self, token: str, purpose: TokenPurpose) -> EmailToken:
        """Validate and use up a token. The delete is the claim: of two requests racing
        with the same link, only the one whose delete removed the row goes on."""
        row = await self._valid(token, purpose)
        if not await self._repo.claim_email_token(row.token_hash):
            raise InvalidLinkError()
        return row

    async def _user_of(self, row: EmailToken) -> User:
        user = await self._repo.user_by_id(row.user_id) if row.user_id is not None else None
        if user is None or user.email != row.email:
            raise InvalidLinkError()
        return user


def _closed_message(mode: SignupMode) -> str:
    if mode == SignupMode.INVITE:
        return "New accounts are by invitation only here. Ask an admin for an invite link."
    return "This site is not taking new accounts. Ask an admin if you need one."
