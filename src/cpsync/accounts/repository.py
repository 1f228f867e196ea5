"""Every query of the accounts domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.models import (
    EmailToken,
    FeedToken,
    OAuthLink,
    Preferences,
    SiteSetting,
    TokenPurpose,
    User,
    UserSession,
)


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, row: object) -> None:
        self._session.add(row)

    async def flush(self) -> None:
        await self._session.flush()

    async def count_users(self) -> int:
        return int(await self._session.scalar(select(func.count(User.id))) or 0)

    async def users(self) -> Sequence[User]:
        return (await self._session.scalars(select(User).order_by(User.created_at, User.id))).all()

    async def user_by_id(self, user_id: int) -> User | None:
        return await self._session.get(User, user_id)

    async def user_by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def session_with_user(self, id_hash: str) -> tuple[UserSession, User] | None:
        row = (
            await self._session.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.id_hash == id_hash)
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def delete_session(self, id_hash: str) -> None:
        await self._session.execute(delete(UserSession).where(UserSession.id_hash == id_hash))

    async def delete_sessions_of(self, user_id: int, keep: str | None = None) -> None:
        query = delete(UserSession).where(UserSession.user_id == user_id)
        if keep is not None:
            query = query.where(UserSession.id_hash != keep)
        await self._session.execute(query)

    async def delete_user(self, user: User) -> None:
        await self._session.delete(user)
        await self._session.flush()

    async def email_token(self, token_hash: str) -> EmailToken | None:
        return await self._session.get(EmailToken, token_hash)

    async def delete_email_token(self, token_hash: str) -> None:
        await self._session.execute(delete(EmailToken).where(EmailToken.token_hash == token_hash))

    async def claim_email_token(self, token_hash: str) -> bool:
        """Delete the token; True only for the one transaction whose delete removed it."""
        statement = delete(EmailToken).where(EmailToken.token_hash == token_hash)
        result = cast(CursorResult[Any], await self._session.execute(statement))
        return result.rowcount == 1

    async def delete_email_tokens(self, purpose: str, user_id: int) -> None:
        await self._session.execute(
            delete(EmailToken).where(EmailToken.purpose == purpose, EmailToken.user_id == user_id)
        )

    async def latest_email_token(self, purpose: str, user_id: int) -> EmailToken | None:
        return await self._session.scalar(
            select(EmailToken)
            .where(EmailToken.purpose == purpose, EmailToken.user_id == user_id)
            .order_by(EmailToken.created_at.desc())
            .limit(1)
        )

    async def delete_expired_email_tokens(self, now: datetime) -> None:
        await self._session.execute(delete(EmailToken).where(EmailToken.expires_at <= now))

    async def pending_invites(self, now: datetime) -> Sequence[EmailToken]:
        return (
            await self._session.scalars(
                select(EmailToken)
                .where(EmailToken.purpose == TokenPurpose.INVITE, EmailToken.expires_at > now)
                .order_by(EmailToken.created_at)
            )
        ).all()

    async def site_setting(self, name: str) -> SiteSetting | None:
        return await self._session.get(SiteSetting, name)

    async def delete_expired_sessions(
        self, created_before: datetime, seen_before: datetime, user_id: int | None = None
    ) -> None:
        query = delete(UserSession).where(
            (UserSession.created_at <= created_before) | (UserSession.last_seen_at <= seen_before)
        )
        if user_id is not None:
            query = query.where(UserSession.user_id == user_id)
        await self._session.execute(query)

    async def touch_session(self, id_hash: str, now: datetime) -> None:
        await self._session.execute(
            update(UserSession).where(UserSession.id_hash == id_hash).values(last_seen_at=now)
        )

    async def preferences(self, user_id: int) -> Preferences | None:
        return await self._session.get(Preferences, user_id)

    async def feed_token_of(self, user_id: int) -> FeedToken | None:
        return await self._session.get(FeedToken, user_id)

    async def feed_owner(
        self, token_hash: str
    ) -> tuple[FeedToken, User, Preferences | None] | None:
        """The token row, its user and their preferences, in one indexed query."""
        row = (
            await self._session.execute(
                select(FeedToken, User, Preferences)
                .join(User, User.id == FeedToken.user_id)
                .outerjoin(Preferences, Preferences.user_id == User.id)
                .where(FeedToken.token_hash == token_hash)
            )
        ).first()
        return (row[0], row[1], row[2]) if row is not None else None

    async def delete_feed_token(self, user_id: int) -> None:
        await self._session.execute(delete(FeedToken).where(FeedToken.user_id == user_id))

    async def oauth_links_of(self, user_id: int) -> Sequence[OAuthLink]:
        return (
            await self._session.scalars(select(OAuthLink).where(OAuthLink.user_id == user_id))
        ).all()

    async def oauth_link(self, provider: str, subject: str) -> OAuthLink | None:
        return await self._session.scalar(
            select(OAuthLink).where(OAuthLink.provider == provider, OAuthLink.subject == subject)
        )
