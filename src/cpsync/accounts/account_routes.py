"""The signed-in user's account page, email verification, password reset and change.

State changes are POSTs behind the CSRF check and, living under `/signin` and `/account`,
the sign-in rate limit. Emailed links open a page whose button posts the token, so a mail
scanner that fetches links uses nothing up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from cpsync.accounts.admin_routes import delete_everything
from cpsync.accounts.credentials import InvalidLinkError, WrongPasswordError
from cpsync.accounts.deps import (
    AdministrationDep,
    CredentialsDep,
    CsrfProtected,
    CurrentUser,
    MailerDep,
    VisitorDep,
    set_session_cookie,
)
from cpsync.accounts.mail import deliver
from cpsync.accounts.models import User
from cpsync.accounts.schemas import ChangePasswordForm, EmailForm, NewPasswordForm, field_errors
from cpsync.accounts.service import AccountError
from cpsync.calendars.web import CalendarWebDep
from cpsync.web.deps import SessionDep
from cpsync.web.flash import flash_redirect
from cpsync.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])

# One-time messages after a redirect (signed cookie; a reload does not repeat them).
LINK_SENT = "We sent a new confirmation link to your address."
ADDRESS_CONFIRMED = "Your email address is confirmed."
PASSWORD_CHANGED = "Your password was changed; your other sessions were signed out."  # noqa: S105
CONFIRMED_SIGN_IN = "Your email address is confirmed. Sign in to carry on."
RESET_SIGN_IN = (
    "Your password was changed and every session was signed out. Sign in with the new password."
)
ACCOUNT_DELETED = "Your account and everything it held were deleted."


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _account_page(
    request: Request,
    user: User,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    delete_error: str | None = None,
) -> Response:
    page = {
        "nav": "account",
        "user": user,
        "errors": errors or {},
        "delete_error": delete_error,
    }
    return render(request, "account/settings.html", page, status_code)


@router.get("/account")
async def account_page(request: Request, user: CurrentUser) -> Response:
    return await _account_page(request, user)


@router.post("/account/verify/resend")
async def resend_verification(
    request: Request,
    background: BackgroundTasks,
    credentials: CredentialsDep,
    mailer: MailerDep,
    user: CurrentUser,
) -> Response:
    background.add_task(deliver, mailer, await credentials.resend_verification(user))
    return flash_redirect(request, "/account", LINK_SENT)


@router.get("/account/verify")
async def verify_page(request: Request, credentials: CredentialsDep, token: str = "") -> Response:
    return await _token_page(request, credentials.check_verification, "verify", token)


@router.post("/account/verify")
async def verify(request: Request, credentials: CredentialsDep, visitor: VisitorDep) -> Response:
    token = _text(await request.form(), "token")
    try:
        user = await credentials.verify_email(token)
    except InvalidLinkError as exc:
        return _link_problem(request, "verify", exc)
    if visitor.user is not None and visitor.user.id == user.id:
        return flash_redirect(request, "/account", ADDRESS_CONFIRMED)
    return flash_redirect(request, "/signin", CONFIRMED_SIGN_IN)


@router.get("/signin/forgot")
async def forgot_page(request: Request, visitor: VisitorDep) -> Response:
    return render(request, "account/forgot.html", {"nav": "signin", "errors": {}, "values": {}})


@router.post("/signin/forgot")
async def forgot(
    request: Request,
    background: BackgroundTasks,
    credentials: CredentialsDep,
    mailer: MailerDep,
    visitor: VisitorDep,
) -> Response:
    submitted = _text(await request.form(), "email")
    try:
        email = EmailForm.model_validate({"email": submitted}).email
    except ValidationError as exc:
        page = {"nav": "signin", "errors": field_errors(exc), "values": {"email": submitted}}
        return render(request, "account/forgot.html", page, 422)
    # Known or not, the answer is the same page; only a known address gets an email.
    background.add_task(deliver, mailer, await credentials.request_reset(email))
    return RedirectResponse("/signin/forgot/sent", status_code=303)


@router.get("/signin/forgot/sent")
async def forgot_sent(request: Request, visitor: VisitorDep) -> Response:
    return render(request, "account/check_inbox.html", {"nav": "signin", "reason": "reset"})


@router.get("/signin/reset")
async def reset_page(request: Request, credentials: CredentialsDep, token: str = "") -> Response:
    return await _token_page(request, credentials.check_reset, "reset", token)


@router.post("/signin/reset")
async def reset(request: Request, credentials: CredentialsDep, visitor: VisitorDep) -> Response:
    form = await request.form()
    token = _text(form, "token")
    submitted = {name: _text(form, name) for name in ("password", "password_confirm")}
    try:
        new = NewPasswordForm.model_validate(submitted)
        await credentials.reset_password(token, new.password)
    except ValidationError as exc:
        page = {"nav": "signin", "token": token, "errors": field_errors(exc), "problem": None}
        return render(request, "account/reset.html", page, 422)
    except InvalidLinkError as exc:
        return _link_problem(request, "reset", exc)
    return flash_redirect(request, "/signin", RESET_SIGN_IN)


@router.post("/account/password")
async def change_password(
    request: Request,
    credentials: CredentialsDep,
    visitor: VisitorDep,
    user: CurrentUser,
) -> Response:
    form = await request.form()
    names = ("current_password", "password", "password_confirm")
    submitted = {name: _text(form, name) for name in names}
    assert visitor.session_token is not None  # CurrentUser guarantees a session
    try:
        change = ChangePasswordForm.model_validate(submitted)
        await credentials.change_password(
            user, change.current_password, change.password, visitor.session_token
        )
    except ValidationError as exc:
        return await _account_page(request, user, field_errors(exc), 422)
    except WrongPasswordError as exc:
        return await _account_page(request, user, {"current_password": exc.message}, 422)
    return flash_redirect(request, "/account", PASSWORD_CHANGED)


async def _token_page(
    request: Request, check: Callable[[str], Awaitable[None]], kind: str, token: str
) -> Response:
    """The page an emailed link opens: a button that posts the token, or why it cannot."""
    try:
        await check(token)
    except InvalidLinkError as exc:
        return _link_problem(request, kind, exc)
    template = "account/verify.html" if kind == "verify" else "account/reset.html"
    page: dict[str, Any] = {"nav": "signin", "token": token, "errors": {}, "problem": None}
    return render(request, template, page)


def _link_problem(request: Request, kind: str, exc: InvalidLinkError) -> Response:
    template = "account/verify.html" if kind == "verify" else "account/reset.html"
    page = {"nav": "signin", "token": "", "errors": {}, "problem": exc.message}
    return render(request, template, page, exc.status_code)


@router.post("/account/delete")
async def delete_account(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    admin: AdministrationDep,
    calendars: CalendarWebDep,
    user: CurrentUser,
) -> Response:
    """Everything the account owns goes, after the password (or, for a Google-only
    account, the address typed out) confirms it is the owner asking."""
    form = await request.form()
    try:
        await admin.confirm_own_deletion(user, _text(form, "password"), _text(form, "email"))
    except AccountError as exc:
        return await _account_page(request, user, None, exc.status_code, exc.message)
    await delete_everything(request, session, admin, calendars, background, user)
    set_session_cookie(request, "")
    return flash_redirect(request, "/signin", ACCOUNT_DELETED)
