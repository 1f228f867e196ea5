"""What routes depend on, as `Annotated` aliases.

`SessionDep` commits when the route function returns (before the response is sent), so a
route that raises writes nothing. `Visitor` resolves the session cookie once per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.csrf import FORM_FIELD, HEADER, SAFE_METHODS, CsrfError, tokens_match
from cpsync.accounts.models import Role, User
from cpsync.accounts.service import AccountService, ForbiddenError, NotSignedInError
from cpsync.accounts.sessions import PRESESSION_COOKIE, SESSION_COOKIE
from cpsync.settings import Settings
from cpsync.web.context import AppContext
from cpsync.web.middleware import cookie_header, queue_cookie


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.cpsync
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(context: ContextDep) -> Settings:
    return context.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    async with context.db.session() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(context: ContextDep, session: SessionDep) -> AsyncIterator[AsyncSession]:
    """A replica's session when there are replicas; otherwise the request's own session.

    Never a second session on the primary: it would hold two pool connections per
    request, and under load every request would wait for a connection held by another
    (seen at 16 concurrent home-page requests). Replicas have pools of their own."""
    if not context.db.replicas:
        yield session
        return
    async with context.db.read_session() as replica:
        yield replica


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


def get_accounts(context: ContextDep, session: SessionDep) -> AccountService:
    return context.accounts(session)


AccountsDep = Annotated[AccountService, Depends(get_accounts)]


@dataclass(slots=True)
class Visitor:
    user: User | None
    session_token: str | None
    csrf_token: str


async def get_visitor(request: Request, context: ContextDep, accounts: AccountsDep) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE)
    active = await accounts.resume_session(token) if token else None
    if active is not None:
        visitor = Visitor(active.user, token, active.session.csrf_token)
    else:
        visitor = Visitor(None, None, _anonymous_csrf(request, context))
    request.state.visitor = visitor
    return visitor


def _anonymous_csrf(request: Request, context: AppContext) -> str:
    presession = context.anon_csrf.presession_id(request.cookies.get(PRESESSION_COOKIE))
    if presession is None:
        cookie = context.anon_csrf.new_cookie()
        presession = context.anon_csrf.presession_id(cookie)
        assert presession is not None
        queue_cookie(
            request.state,
            cookie_header(
                PRESESSION_COOKIE, cookie, max_age=None, secure=context.policy.secure_cookies
            ),
        )
        request.state.new_presession = True
    return context.anon_csrf.token_for(presession)


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


async def verify_csrf(request: Request, visitor: VisitorDep) -> None:
    """Every state-changing request carries the visitor's CSRF token (header or form field)."""
    if request.method in SAFE_METHODS:
        return
    if getattr(request.state, "new_presession", False):
        raise CsrfError("Your session was missing; reload the page and try again.")
    submitted = request.headers.get(HEADER)
    content_type = request.headers.get("content-type", "")
    if submitted is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(FORM_FIELD)
        submitted = value if isinstance(value, str) else None
    if not tokens_match(visitor.csrf_token, submitted):
        raise CsrfError(
            "The form expired or came from another site; reload the page and try again."
        )


CsrfProtected = Depends(verify_csrf)


def get_optional_user(visitor: VisitorDep) -> User | None:
    return visitor.user


def get_current_user(visitor: VisitorDep) -> User:
    if visitor.user is None:
        raise NotSignedInError("Sign in to see this page.")
    return visitor.user


def get_admin_user(user: Annotated[User, Depends(get_current_user)]) -> User:
    if user.role != Role.ADMIN:
        raise ForbiddenError("Only admins can see this page.")
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]
