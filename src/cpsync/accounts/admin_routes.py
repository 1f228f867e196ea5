"""The admin page and its account actions: roles, sign-up mode, invites, disabling and
deleting users. A refused action (the last admin, an unconfirmed address) comes back as a
message on the admin page next to the form that caused it, not as an error page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts import google
from cpsync.accounts.administration import Administration
from cpsync.accounts.deps import (
    AccountsDep,
    AdministrationDep,
    AdminUser,
    CsrfProtected,
    MailerDep,
    set_session_cookie,
)
from cpsync.accounts.mail import deliver
from cpsync.accounts.models import Role, SignupMode, User
from cpsync.accounts.schemas import InviteForm, RoleForm, field_errors
from cpsync.accounts.service import AccountError, AccountService
from cpsync.cache import CacheError
from cpsync.calendars.web import CalendarWeb, CalendarWebDep
from cpsync.contests.service import platform_health, refresh_running
from cpsync.heartbeats import Heartbeats, expected_kinds, missing_kinds
from cpsync.jobs import recent_jobs
from cpsync.web.context import AppContext
from cpsync.web.deps import ContextDep, SessionDep
from cpsync.web.flash import flash_redirect
from cpsync.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[CsrfProtected])

# The contest refresh button (cpsync.contests.routes) still reports through the address.
REFRESH_NOTICES = {
    "started": "A contest refresh has started; reload in a moment to see it below.",
    "busy": "A refresh is already running.",
}


async def _admin_page(
    request: Request,
    context: AppContext,
    session: AsyncSession,
    accounts: AccountService,
    admin: Administration,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    page = {
        "nav": "admin",
        "users": await accounts.users(),
        "health": await platform_health(session, context.settings, context.clock()),
        "jobs": await recent_jobs(session),
        "refresh_running": await refresh_running(context.resources.cache),
        "processes": await _processes(context),
        "flash": REFRESH_NOTICES.get(request.query_params.get("refresh", "")),
        "signup_mode": await admin.signup_mode(),
        "email_enabled": admin.email_enabled,
        "invites": await admin.pending_invites(),
        "row_errors": {},
        "invite_errors": {},
        "invite_values": {},
        "invite_link": None,
        **(extra or {}),
    }
    return render(request, "admin.html", page, status_code)


async def _processes(context: AppContext) -> dict[str, Any]:
    """The schedulers' and workers' heartbeats, and the expected kinds none of which beat."""
    settings = context.settings
    heartbeats = Heartbeats(context.cache, context.clock, settings.heartbeat_seconds)
    expected = expected_kinds(
        broker_in_process=context.resources.broker.in_process, cache_url=settings.cache_url
    )
    view: dict[str, Any] = {"window": heartbeats.max_age.total_seconds(), "error": None}
    try:
        beats = await heartbeats.listing()
    except CacheError as exc:
        return {**view, "beats": [], "missing": list(expected), "error": exc.message}
    return {**view, "beats": beats, "missing": missing_kinds(beats, expected)}


@router.get("/admin")
async def admin_page(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    admin: AdministrationDep,
    user: AdminUser,
) -> Response:
    return await _admin_page(request, context, session, accounts, admin)


async def _refused(
    request: Request,
    context: AppContext,
    session: AsyncSession,
    accounts: AccountService,
    admin: Administration,
    user_id: int,
    exc: AccountError,
) -> Response:
    extra = {"row_errors": {user_id: exc.message}}
    return await _admin_page(request, context, session, accounts, admin, extra, exc.status_code)


@router.post("/admin/users/{user_id}/role")
async def set_role(
    user_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    admin: AdministrationDep,
    admin_user: AdminUser,
) -> Response:
    form = await request.form()
    try:
        role = RoleForm.model_validate({"role": form.get("role")}).role
        changed = await accounts.set_role(user_id, Role(role))
    except ValidationError:
        error = AccountError("Choose a role: admin, coach or member.", status_code=422)
        return await _refused(request, context, session, accounts, admin, user_id, error)
    except AccountError as exc:
        return await _refused(request, context, session, accounts, admin, user_id, exc)
    if changed.id == admin_user.id:
        # The admin's own sessions ended with the change; carry on under a new session id.
        set_session_cookie(request, await accounts.start_session(changed))
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/{user_id}/disable")
async def disable_user(
    user_id: int,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    admin: AdministrationDep,
    admin_user: AdminUser,
) -> Response:
    disabled = (await request.form()).get("disabled") != "0"
    try:
        await admin.set_disabled(admin_user, user_id, disabled)
    except AccountError as exc:
        return await _refused(request, context, session, accounts, admin, user_id, exc)
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/users/{user_id}/delete")
async def delete_user(
    user_id: int,
    request: Request,
    background: BackgroundTasks,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    admin: AdministrationDep,
    calendars: CalendarWebDep,
    admin_user: AdminUser,
) -> Response:
    form = await request.form()
    try:
        user = await admin.deletable(user_id)
        typed = form.get("confirm_email")
        if not isinstance(typed, str) or typed.strip().lower() != user.email:
            raise AccountError("Type the user's email address to confirm.", status_code=422)
        if user.id == admin_user.id:
            raise AccountError("Delete your own account from your account page.", status_code=409)
    except AccountError as exc:
        return await _refused(request, context, session, accounts, admin, user_id, exc)
    await delete_everything(request, session, admin, calendars, background, user)
    return flash_redirect(request, "/admin", "The user and everything they owned were deleted.")


async def delete_everything(
    request: Request,
    session: AsyncSession,
    admin: Administration,
    calendars: CalendarWeb,
    background: BackgroundTasks,
    user: User,
) -> None:
    """Delete the account and all it owns; its Google grants are withdrawn after the answer."""
    plan = await admin.plan_deletion(user)
    await session.commit()  # see Administration.delete: the calendars write on their own
    await admin.delete(user, plan, calendars.service)
    settings = request.app.state.cpsync.settings
    background.add_task(google.revoke, settings, plan.google_tokens)


@router.post("/admin/signup-mode")
async def set_signup_mode(
    request: Request, admin: AdministrationDep, admin_user: AdminUser
) -> Response:
    value = (await request.form()).get("mode")
    try:
        mode = SignupMode(str(value))
    except ValueError as exc:
        raise AccountError("Choose open, invite-only or closed.", status_code=422) from exc
    await admin.set_signup_mode(mode)
    return flash_redirect(request, "/admin", "The sign-up mode was saved.")


@router.post("/admin/invites")
async def create_invite(
    request: Request,
    background: BackgroundTasks,
    context: ContextDep,
    session: SessionDep,
    accounts: AccountsDep,
    admin: AdministrationDep,
    mailer: MailerDep,
    admin_user: AdminUser,
) -> Response:
    form = await request.form()
    submitted = {"email": form.get("email") or "", "role": form.get("role") or "member"}
    try:
        invite = InviteForm.model_validate(submitted)
        link, email = await admin.invite(admin_user, invite.email, invite.role)
    except ValidationError as exc:
        extra = {"invite_errors": field_errors(exc), "invite_values": submitted}
        return await _admin_page(request, context, session, accounts, admin, extra, 422)
    except AccountError as exc:
        extra = {"invite_errors": {"email": exc.message}, "invite_values": submitted}
        return await _admin_page(request, context, session, accounts, admin, extra, 409)
    if admin.email_enabled:
        background.add_task(deliver, mailer, [email])
    # Shown once, here: only its hash is stored.
    extra = {"invite_link": link, "invite_sent_to": invite.email}
    return await _admin_page(request, context, session, accounts, admin, extra)


@router.post("/admin/invites/revoke")
async def revoke_invite(
    request: Request, admin: AdministrationDep, admin_user: AdminUser
) -> Response:
    token_hash = (await request.form()).get("invite") or ""
    await admin.revoke_invite(str(token_hash))
    return flash_redirect(request, "/admin", "The invite link no longer works.")
