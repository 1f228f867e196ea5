"""The accounts domain's FastAPI dependencies: who the visitor is, CSRF, and account services.

`Visitor` resolves the session cookie once per request; `CsrfProtected` guards every
state change; `CurrentUser` / `AdminUser` refuse anyone else with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from cpsync.accounts.administration import Administration
from cpsync.accounts.credentials import CredentialService, MailPolicy
from cpsync.accounts.csrf import FORM_FIELD, HEADER, SAFE_METHODS, CsrfError, tokens_match
from cpsync.accounts.mail import AccountMail
from cpsync.accounts.models import Role, SignupMode, User
from cpsync.accounts.service import AccountService, ForbiddenError, NotSignedInError
from cpsync.accounts.sessions import PRESESSION_COOKIE, SESSION_COOKIE
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep, SessionDep
from cpsync.web.middleware import cookie_header, queue_cookie


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
