"""The accounts domain's FastAPI dependencies: who the visitor is, CSRF, and account services.

`Visitor` resolves the session cookie once per request; `CsrfProtected` guards every
state change; `CurrentUser` / `AdminUser` refuse anyone else with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.administration import Administration
from cpsync.accounts.credentials import CredentialService, MailPolicy
from cpsync.accounts.csrf import (
    FORM_FIELD,
    HEADER,
    SAFE_METHODS,
    AnonymousCsrf,
    CsrfError,
    tokens_match,
)
from cpsync.accounts.mail import AccountMail
from cpsync.accounts.models import Role, SignupMode, User
from cpsync.accounts.service import AccountService, ForbiddenError, NotSignedInError
from cpsync.accounts.sessions import PRESESSION_COOKIE, SESSION_COOKIE, SessionPolicy
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.resources import Resources
from cpsync.web.deps import ContextDep, SessionDep
from cpsync.web.middleware import cookie_header, queue_cookie


@dataclass(frozen=True, slots=True)
class AccountsWeb:
    """What the app factory builds once for this domain: the session cookies' policy and
    the signed CSRF tokens of visitors who are not signed in."""

    policy: SessionPolicy
    anon_csrf: AnonymousCsrf

    def install(self, app: FastAPI) -> None:
        app.state.accounts = self

    def service(self, session: AsyncSession, resources: Resources) -> AccountService:
        return AccountService(session, resources.keyring, self.policy, resources.clock)


def get_accounts_web(request: Request) -> AccountsWeb:
    web: AccountsWeb = request.app.state.accounts
    return web


AccountsWebDep = Annotated[AccountsWeb, Depends(get_accounts_web)]


def set_cookie(
    request: Request, name: str, value: str, max_age: int | None, path: str = "/"
) -> None:
    """Queue a cookie on the response; Secure when the deployment's policy says so."""
    secure = get_accounts_web(request).policy.secure_cookies
    cookie = cookie_header(name, value, max_age=max_age, secure=secure, path=path)
    queue_cookie(request.state, cookie)


def set_session_cookie(request: Request, token: str) -> None:
    """The signed-in session's cookie; an empty token ends it in the browser."""
    max_age = get_accounts_web(request).policy.cookie_max_age() if token else 0
    set_cookie(request, SESSION_COOKIE, token, max_age)


def get_accounts(context: ContextDep, web: AccountsWebDep, session: SessionDep) -> AccountService:
    return web.service(session, context.resources)


AccountsDep = Annotated[AccountService, Depends(get_accounts)]


@dataclass(slots=True)
class Visitor:
    user: User | None
    session_token: str | None
    csrf_token: str


async def get_visitor(request: Request, web: AccountsWebDep, accounts: AccountsDep) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE)
    active = await accounts.resume_session(token) if token else None
    if active is not None:
        visitor = Visitor(active.user, token, active.session.csrf_token)
    else:
        visitor = Visitor(None, None, _anonymous_csrf(request, web))
    request.state.visitor = visitor
    return visitor


def _anonymous_csrf(request: Request, web: AccountsWeb) -> str:
    presession = web.anon_csrf.presession_id(request.cookies.get(PRESESSION_COOKIE))
    if presession is None:
        cookie = web.anon_csrf.new_cookie()
        presession = web.anon_csrf.presession_id(cookie)
        assert presession is not None
        set_cookie(request, PRESESSION_COOKIE, cookie, max_age=None)
        request.state.new_presession = True
    return web.anon_csrf.token_for(presession)


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


def get_current_user(visitor: VisitorDep) -> User:
    if visitor.user is None:
        raise NotSignedInError("Sign in to see this page.")
    return visitor.user


def get_admin_user(user: Annotated[User, Depends(get_current_user)]) -> User:
    if user.role != Role.ADMIN:
        raise ForbiddenError("Only admins can see this page.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin_user)]


def get_credentials(
    context: ContextDep, session: SessionDep, accounts: AccountsDep
) -> CredentialService:
    settings = context.settings
    policy = MailPolicy(AccountMail(settings.public_url), enabled=bool(settings.smtp_url))
    return CredentialService(
        session, accounts, context.clock, policy, SignupMode(settings.signup_mode)
    )


CredentialsDep = Annotated[CredentialService, Depends(get_credentials)]


def get_administration(
    context: ContextDep, session: SessionDep, accounts: AccountsDep, credentials: CredentialsDep
) -> Administration:
    mail = AccountMail(context.settings.public_url)
    return Administration(session, accounts, credentials, context.clock, mail)


def get_mailer(context: ContextDep) -> Mailer:
    return mailer_from_url(context.settings.smtp_url)


MailerDep = Annotated[Mailer, Depends(get_mailer)]
AdministrationDep = Annotated[Administration, Depends(get_administration)]
