"""Sign-up, sign-in (local and Google), sign-out. Thin: parse, call the service, answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from cpsync.accounts import google
from cpsync.accounts.account_routes import router as account_router
from cpsync.accounts.admin_routes import router as admin_router
from cpsync.accounts.credentials import CredentialService, InvalidLinkError
from cpsync.accounts.csrf import tokens_match
from cpsync.accounts.deps import (
    AccountsDep,
    CredentialsDep,
    CsrfProtected,
    CurrentUser,
    MailerDep,
    VisitorDep,
    set_cookie,
    set_session_cookie,
)
from cpsync.accounts.mail import deliver
from cpsync.accounts.models import SignupMode, User
from cpsync.accounts.schemas import SigninForm, SignupForm, field_errors
from cpsync.accounts.service import (
    DISABLED_MESSAGE,
    AccountError,
    AccountService,
    GoogleSignInError,
)
from cpsync.accounts.sessions import PRESESSION_COOKIE
from cpsync.web.deps import ContextDep
from cpsync.web.flash import flash_redirect
from cpsync.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])

HOME_AFTER_SIGNIN = "/calendar"


def safe_next(target: str | None) -> str:
    """Only same-site paths: `/x`, never `//host`, `/\\host` or a scheme."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME_AFTER_SIGNIN
    if any(ch in target for ch in "\r\n\t") or len(target) > 2000:
        return HOME_AFTER_SIGNIN
    return target


async def _signed_in(
    request: Request,
    accounts: AccountService,
    user: User,
    replacing: str | None,
    target: str,
) -> Response:
    """A new session id for this sign-in; whatever session the browser had ends."""
    token = await accounts.start_session(user, replacing=replacing)
    set_session_cookie(request, token)
    set_cookie(request, PRESESSION_COOKIE, "", 0)
    return RedirectResponse(safe_next(target), status_code=303)


def _form_values(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    return values


@router.get("/signup")
async def signup_page(
    request: Request, visitor: VisitorDep, credentials: CredentialsDep, invite: str = ""
) -> Response:
    if visitor.user is not None:
        return RedirectResponse("/", status_code=303)
    return await _signup_page(request, credentials, invite, {}, {})


async def _signup_page(
    request: Request,
    credentials: CredentialService,
    invite: str,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    page: dict[str, Any] = {
        "nav": "signup",
        "errors": errors,
        "values": values,
        "mode": await credentials.signup_mode(),
        "invite": None,
        "invite_token": invite,
        "invite_error": None,
    }
    if invite:
        try:
            page["invite"] = await credentials.invitation(invite)
        except InvalidLinkError as exc:
            page["invite_error"] = exc.message
    return render(request, "signup.html", page, status_code)


@router.post("/signup")
async def signup(
    request: Request,
    background: BackgroundTasks,
    accounts: AccountsDep,
    credentials: CredentialsDep,
    mailer: MailerDep,
    visitor: VisitorDep,
) -> Response:
    if visitor.user is not None:
        return RedirectResponse("/", status_code=303)
    names = ("email", "password", "password_confirm", "invite")
    submitted = _form_values(await request.form(), names)
    invite = submitted.pop("invite")
    shown = {"email": submitted["email"]}
    try:
        if invite:
            submitted["email"] = (await credentials.invitation(invite)).email
        form = SignupForm.model_validate(submitted)
        result = await credentials.sign_up(form.email, form.password, invite or None)
    except ValidationError as exc:
        return await _signup_page(request, credentials, invite, field_errors(exc), shown, 422)
    except AccountError as exc:
        errors = {"form": exc.message}
        return await _signup_page(request, credentials, invite, errors, shown, exc.status_code)
    background.add_task(deliver, mailer, result.emails)
    if result.signed_in is not None:
        return await _signed_in(
            request, accounts, result.signed_in, visitor.session_token, HOME_AFTER_SIGNIN
        )
    # The same answer whether or not the address already had an account (no enumeration).
    if credentials.email_enabled:
        return RedirectResponse("/signup/sent", status_code=303)
    return flash_redirect(request, "/signin", SIGNED_UP)


@router.get("/signup/sent")
async def signup_sent(request: Request, visitor: VisitorDep) -> Response:
    return render(request, "account/check_inbox.html", {"nav": "signup", "reason": "signup"})


async def _signin_page(
    request: Request,
    accounts: AccountService,
    errors: dict[str, str],
    values: dict[str, str],
    status_code: int = 200,
) -> Response:
    page = {
        "nav": "signin",
        "errors": errors,
        "values": values,
        "bootstrap_needed": await accounts.bootstrap_needed(),
    }
    return render(request, "signin.html", page, status_code)


# Shown once on the sign-in page (no SMTP: sign-up cannot say more without telling
# whether the address was already registered).
SIGNED_UP = (
    "If this address was new, your account is ready: sign in with it. If it already had "
    "an account, sign in with that account's password."
)


@router.get("/signin")
async def signin_page(
    request: Request, accounts: AccountsDep, visitor: VisitorDep, next: str = ""
) -> Response:
    if visitor.user is not None:
        return RedirectResponse(safe_next(next) if next else "/", status_code=303)
    return await _signin_page(request, accounts, {}, {"next": safe_next(next) if next else ""})


@router.post("/signin")
async def signin(request: Request, accounts: AccountsDep, visitor: VisitorDep) -> Response:
    submitted = _form_values(await request.form(), ("email", "password", "next"))
    shown = {"email": submitted["email"], "next": submitted["next"]}
    try:
        form = SigninForm.model_validate(submitted)
    except ValidationError as exc:
        return await _signin_page(request, accounts, field_errors(exc), shown, 422)
    user = await accounts.authenticate(form.email, form.password)
    if user is None:
        errors = {"password": "The email or password is not right."}
        return await _signin_page(request, accounts, errors, shown, 401)
    if user.disabled:
        # Said only after the right password: it reveals nothing to a guesser.
        return await _signin_page(request, accounts, {"form": DISABLED_MESSAGE}, shown, 403)
    return await _signed_in(request, accounts, user, visitor.session_token, form.next)


@router.post("/signout")
async def signout(request: Request, accounts: AccountsDep, visitor: VisitorDep) -> Response:
    if visitor.session_token:
        await accounts.end_session(visitor.session_token)
    set_session_cookie(request, "")
    return RedirectResponse("/", status_code=303)


@router.post("/signout/everywhere")
async def signout_everywhere(
    request: Request, accounts: AccountsDep, user: CurrentUser
) -> Response:
    await accounts.end_all_sessions(user.id)
    set_session_cookie(request, "")
    return RedirectResponse("/signin", status_code=303)


@router.get("/auth/google")
async def google_start(request: Request, context: ContextDep, next: str = "") -> Response:
    if not context.settings.google_enabled:
        raise GoogleSignInError("Google sign-in is not configured here.", status_code=404)
    url, state = await google.begin(context.settings, context.cache, safe_next(next))
    # Binds the attempt to this browser: a callback carrying someone else's state fails.
    set_cookie(request, google.STATE_COOKIE, state, google.STATE_TTL_SECONDS, path="/auth/google")
    return RedirectResponse(url, status_code=302)


@router.get("/auth/google/callback")
async def google_callback(
    request: Request,
    context: ContextDep,
    accounts: AccountsDep,
    credentials: CredentialsDep,
    visitor: VisitorDep,
    state: str = "",
    code: str = "",
    error: str = "",
) -> Response:
    if not context.settings.google_enabled:
        raise GoogleSignInError("Google sign-in is not configured here.", status_code=404)
    browser_state = request.cookies.get(google.STATE_COOKIE)
    set_cookie(request, google.STATE_COOKIE, "", 0, path="/auth/google")
    pending = await google.take_state(context.cache, state) if state else None
    if pending is None or not tokens_match(browser_state, state):
        message = (
            "This sign-in attempt expired, was already used, or began in another browser. "
            "Try again."
        )
        return await _signin_page(request, accounts, {"google": message}, {}, 400)
    if error or not code:
        message = (
            "Google sign-in was cancelled."
            if error == "access_denied"
            else "Google did not sign you in."
        )
        return await _signin_page(request, accounts, {"google": message}, {}, 400)
    try:
        profile, tokens = await google.finish(context.settings, code, pending)
        open_signup = await credentials.signup_mode() == SignupMode.OPEN
        user = await accounts.sign_in_with_google(
            profile, tokens.refresh_token, tokens.scope, may_create=open_signup
        )
    except GoogleSignInError as exc:
        return await _signin_page(request, accounts, {"google": exc.message}, {}, 400)
    return await _signed_in(request, accounts, user, visitor.session_token, pending.next_url)


# The account page, verification, reset and password change live beside sign-in;
# the admin page's account actions too.
router.include_router(account_router)
router.include_router(admin_router)
