"""Sign-up modes and invites, disabling and deleting users, deleting one's own account,
the last admin's protection and signed-in visitors on /signin and /signup: all through
the routes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cpsync.accounts.models import (
    EmailToken,
    FeedToken,
    Preferences,
    Role,
    User,
    UserSession,
)
from cpsync.accounts.sessions import SESSION_COOKIE
from cpsync.app import create_app
from cpsync.calendars.config import calendar_service
from cpsync.calendars.models import CalendarLink
from cpsync.db import Base
from cpsync.settings import Settings
from cpsync.students.models import Student, StudentRating, StudentSyncRun
from tests.accounts.conftest import link_in, messages_to
from tests.recordings import RECORDED_AT, MutableClock
from tests.smtp_receiver import Inbox
from tests.web.conftest import (
    PASSWORD,
    WebClient,
    accounts_of,
    create_user,
    csrf_of,
    make_client,
    sign_in,
)

OWNED = (
    UserSession,
    FeedToken,
    Preferences,
    EmailToken,
    CalendarLink,
    Student,
    StudentRating,
    StudentSyncRun,
)


async def signed_in_as(http: WebClient) -> str | None:
    me = await http.get("/api/v1/me")
    return me.json()["email"] if me.status_code == 200 else None


async def admin_client(app: FastAPI, http: WebClient) -> str:
    await create_user(app, "root@example.com", Role.ADMIN)
    await sign_in(http, "root@example.com")
    return csrf_of(await http.get("/admin"))


async def count(app: FastAPI, table: type[Base]) -> int:
    async with app.state.cpsync.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def add_student_with_history(app: FastAPI, coach_id: int) -> None:
    async with app.state.cpsync.db.session() as session:
        student = Student(
            coach_id=coach_id,
            name="Tourist",
            handle="tourist",
            handle_key="tourist",
            created_at=RECORDED_AT,
            updated_at=RECORDED_AT,
        )
        session.add(student)
        await session.flush()
        session.add(
            StudentRating(
                student_id=student.id,
                contest_id=1,
                contest_name="Round 1",
                rank=1,
                old_rating=3000,
                new_rating=3100,
                updated_at=RECORDED_AT,
            )
        )
        session.add(
            StudentSyncRun(coach_id=coach_id, trigger="manual", started_at=RECORDED_AT, counts={})
        )
        await session.commit()


async def test_signed_in_visitors_are_sent_home_from_signin_and_signup(
    app: FastAPI, client: WebClient
) -> None:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    for path in ("/signin", "/signup"):
        answer = await client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
    assert (await client.get("/signin?next=/calendar")).headers["location"] == "/calendar"


async def test_closed_and_invite_only_signup(app: FastAPI, client: WebClient) -> None:
    token = await admin_client(app, client)
    saved = await client.post("/admin/signup-mode", data={"mode": "closed", "csrf_token": token})
    assert saved.headers["location"] == "/admin"
    page = await client.get("/admin")
    assert 'value="closed" selected' in page.text
    assert "The sign-up mode was saved." in page.text
    assert "The sign-up mode was saved." not in (await client.get("/admin")).text  # once
    async with make_client(app, ip="198.51.100.20") as visitor:
        page = await visitor.get("/signup")
        assert "not taking new accounts" in page.text
        assert 'action="/signup"' not in page.text
        fields = {"email": "eve@example.com", "password": PASSWORD, "password_confirm": PASSWORD}
        refused = await visitor.post("/signup", data={**fields, "csrf_token": csrf_of(page)})
        assert refused.status_code == 403
        await client.post("/admin/signup-mode", data={"mode": "invite", "csrf_token": token})
        refused = await visitor.post("/signup", data={**fields, "csrf_token": csrf_of(page)})
        assert refused.status_code == 403
        assert "by invitation only" in refused.text
    assert await count(app, User) == 1
    bad = await client.post("/admin/signup-mode", data={"mode": "sometimes", "csrf_token": token})
    assert bad.status_code == 422


async def test_the_setting_gives_the_mode_until_an_admin_chooses(
    database: object, web_settings: Settings, clock: MutableClock
) -> None:
    settings = web_settings.model_copy(update={"signup_mode": "closed"})
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application), make_client(application) as http:
        assert "not taking new accounts" in (await http.get("/signup")).text


async def test_an_emailed_invite_signs_up_once_with_its_role(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox, clock: MutableClock
) -> None:
    token = await admin_client(mail_app, mail_client)
    await mail_client.post("/admin/signup-mode", data={"mode": "invite", "csrf_token": token})
    invite = {"email": "Coach@Example.com", "role": "coach", "csrf_token": token}
    created = await mail_client.post("/admin/invites", data=invite)
    assert created.status_code == 200
    assert "it is shown only now" in created.text
    assert "coach@example.com" in (await mail_client.get("/admin")).text  # pending
    link = link_in(messages_to(inbox, "coach@example.com")[0], "/signup")
    async with make_client(mail_app, ip="198.51.100.21") as invited:
        page = await invited.get(link)
        assert 'value="coach@example.com" autocomplete="email" readonly' in page.text
        fields = {
            "invite": link.split("invite=", 1)[1],
            "email": "someone-else@example.com",  # ignored: the invite names the address
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "csrf_token": csrf_of(page),
        }
        answer = await invited.post("/signup", data=fields)
        assert (answer.status_code, answer.headers["location"]) == (303, "/calendar")
        me = (await invited.get("/api/v1/me")).json()
        assert (me["email"], me["role"]) == ("coach@example.com", "coach")
        assert "Please confirm" not in (await invited.get("/calendar")).text
    async with make_client(mail_app, ip="198.51.100.22") as again:
        page = await again.get(link)
        assert "expired or was already used" in page.text
        replay = await again.post("/signup", data={**fields, "csrf_token": csrf_of(page)})
        assert replay.status_code == 400
    # An unused invite expires after a week; a revoked one stops at once.
    invite = {"email": "late@example.com", "role": "member", "csrf_token": token}
    await mail_client.post("/admin/invites", data=invite)
    late = link_in(messages_to(inbox, "late@example.com")[0], "/signup")
    clock.advance(timedelta(days=7, seconds=1))
    assert "expired or was already used" in (await mail_client.get(late)).text


async def test_an_invite_for_a_registered_address_is_refused_on_the_form(
    app: FastAPI, client: WebClient
) -> None:
    token = await admin_client(app, client)
    await create_user(app, "ada@example.com")
    answer = await client.post(
        "/admin/invites", data={"email": "ada@example.com", "role": "member", "csrf_token": token}
    )
    assert answer.status_code == 409
    assert "already has an account" in answer.text
    made = await client.post(
        "/admin/invites", data={"email": "bob@example.com", "role": "member", "csrf_token": token}
    )
    # No SMTP: the link is shown for the admin to pass on.
    assert "http://127.0.0.1:8000/signup?invite=" in made.text
    async with app.state.cpsync.db.session() as session:
        invite_hash = await session.scalar(select(EmailToken.token_hash))
    await client.post("/admin/invites/revoke", data={"invite": invite_hash, "csrf_token": token})
    assert await count(app, EmailToken) == 0


async def test_a_disabled_user_is_signed_out_and_cannot_sign_in(
    app: FastAPI, client: WebClient
) -> None:
    token = await admin_client(app, client)
    member = await create_user(app, "ada@example.com")
    async with make_client(app, ip="198.51.100.23") as ada:
        await sign_in(ada, "ada@example.com")
        feed = (await ada.get("/api/v1/feed")).json()["feed_url"]
        feed_path = feed.split("127.0.0.1:8000", 1)[1]
        assert (await ada.get(feed_path)).status_code == 200
        answer = await client.post(
            f"/admin/users/{member.id}/disable", data={"disabled": "1", "csrf_token": token}
        )
        assert answer.status_code == 303
        assert "disabled</span>" in (await client.get("/admin")).text
        assert await signed_in_as(ada) is None
        assert (await ada.get(feed_path)).status_code == 404
        refused = await sign_in(ada, "ada@example.com")
        assert refused.status_code == 403
        assert "disabled by an admin" in refused.text
        wrong = await sign_in(ada, "ada@example.com", "not the password")
        assert wrong.status_code == 401
        assert "disabled" not in wrong.text  # a guesser learns nothing
        await client.post(
            f"/admin/users/{member.id}/disable", data={"disabled": "0", "csrf_token": token}
        )
        await sign_in(ada, "ada@example.com")
        assert await signed_in_as(ada) == "ada@example.com"


async def test_the_last_admin_is_kept_with_a_message_on_the_form(
    app: FastAPI, client: WebClient
) -> None:
    token = await admin_client(app, client)
    root = await create_user(app, "root2@example.com", Role.ADMIN)
    me = (await client.get("/api/v1/me")).json()
    # With a second admin disabled, the first is the last one who can sign in.
    await client.post(f"/admin/users/{root.id}/disable", data={"csrf_token": token})
    demote = await client.post(
        f"/admin/users/{me['id']}/role", data={"role": "member", "csrf_token": token}
    )
    assert demote.status_code == 409
    assert f'id="user-{me["id"]}-error"' in demote.text
    assert "This is the last admin" in demote.text
    yourself = await client.post(f"/admin/users/{me['id']}/disable", data={"csrf_token": token})
    assert "cannot disable your own account" in yourself.text
    page = await client.get("/account")
    own = await client.post(
        "/account/delete", data={"password": PASSWORD, "csrf_token": csrf_of(page)}
    )
    assert own.status_code == 409
    assert "last admin" in own.text
    assert await signed_in_as(client) == "root@example.com"


@pytest.mark.parametrize("who", ["admin", "self"])
async def test_deleting_a_user_leaves_nothing_of_them(
    app: FastAPI, client: WebClient, radicale_url: str, who: str
) -> None:
    token = await admin_client(app, client)
    coach = await create_user(app, "coach@example.com", Role.COACH)
    await add_student_with_history(app, coach.id)
    calendars = calendar_service(app.state.resources)
    url = f"{radicale_url}/coach/contests-{uuid.uuid4().hex[:8]}/"
    await calendars.connect_caldav(coach.id, url, "coach", "app-password")
    async with make_client(app, ip="198.51.100.24") as coach_http:
        await sign_in(coach_http, "coach@example.com")
        await coach_http.get("/calendar")  # creates the feed token
        before = {table.__name__: await count(app, table) for table in OWNED}
        owned = ("CalendarLink", "Student", "StudentSyncRun", "FeedToken")
        assert all(before[name] >= 1 for name in owned)
        if who == "admin":
            path, confirm = f"/admin/users/{coach.id}/delete", {"csrf_token": token}
            wrong = await client.post(path, data={**confirm, "confirm_email": "coach@"})
            assert wrong.status_code == 422
            assert "email address to confirm" in wrong.text
            answer = await client.post(path, data={**confirm, "confirm_email": "coach@example.com"})
            assert answer.headers["location"] == "/admin"
        else:
            confirm = {"csrf_token": csrf_of(await coach_http.get("/account"))}
            wrong = await coach_http.post(
                "/account/delete", data={**confirm, "password": "not my password"}
            )
            assert wrong.status_code == 422
            assert "not your password" in wrong.text
            answer = await coach_http.post(
                "/account/delete", data={**confirm, "password": PASSWORD}
            )
            assert answer.headers["location"] == "/signin"
        assert await signed_in_as(coach_http) is None
    async with app.state.cpsync.db.session() as session:
        assert await session.get(User, coach.id) is None
    # Only the admin's own rows remain (a session, preferences).
    after = {table.__name__: await count(app, table) for table in OWNED}
    assert after == {
        "UserSession": 1,
        "FeedToken": 0,
        "Preferences": 1,
        "EmailToken": 0,
        "CalendarLink": 0,
        "Student": 0,
        "StudentRating": 0,
        "StudentSyncRun": 0,
    }
    async with make_client(app, ip="198.51.100.25") as stranger:
        refused = await sign_in(stranger, "coach@example.com")
        assert refused.status_code == 401


async def test_an_unconfirmed_address_cannot_be_made_coach_or_admin(
    app: FastAPI, client: WebClient
) -> None:
    token = await admin_client(app, client)
    member = await create_user(app, "ada@example.com")
    async with app.state.cpsync.db.session() as session:
        stored = await session.get(User, member.id)
        assert stored is not None
        stored.email_verified_at = None
        await session.commit()
    assert "unconfirmed</span>" in (await client.get("/admin")).text
    answer = await client.post(
        f"/admin/users/{member.id}/role", data={"role": "coach", "csrf_token": token}
    )
    assert answer.status_code == 409
    assert f'id="user-{member.id}-error"' in answer.text
    assert "need a confirmed email address" in answer.text
    async with app.state.cpsync.db.session() as session:
        stored = await session.get(User, member.id)
        assert stored is not None
        assert stored.role == "member"


async def test_an_account_without_password_confirms_deletion_by_typing_its_address(
    app: FastAPI, client: WebClient
) -> None:
    context = app.state.cpsync
    async with context.db.session() as session:
        accounts = accounts_of(app, session)
        user = await accounts.create_user("g@example.com", None)  # signs in with Google
        cookie = await accounts.start_session(user)
        await session.commit()
    client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    page = await client.get("/account")
    assert "Type your email address, to confirm" in page.text
    token = csrf_of(page)
    wrong = await client.post(
        "/account/delete", data={"email": "x@example.com", "csrf_token": token}
    )
    assert wrong.status_code == 422
    answer = await client.post(
        "/account/delete", data={"email": " G@example.com ", "csrf_token": token}
    )
    assert answer.headers["location"] == "/signin"
    assert await count(app, User) == 0
