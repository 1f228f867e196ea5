"""Sessions: fixation, cookie flags, idle and absolute expiry, sign-out everywhere, role change."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select

from cpsync.accounts.models import Role, UserSession
from cpsync.accounts.sessions import SESSION_COOKIE, token_hash
from cpsync.app import create_app
from tests.recordings import MutableClock
from tests.web.conftest import PASSWORD, WebClient, create_user, csrf_of, make_client, sign_in


def session_cookie(http: WebClient) -> str | None:
    return http.cookies.get(SESSION_COOKIE)


async def session_rows(app: FastAPI) -> int:
    async with app.state.cpsync.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(UserSession)) or 0)


async def test_sign_in_issues_a_new_id_and_ignores_a_planted_one(
    app: FastAPI, client: WebClient
) -> None:
    await create_user(app, "ada@example.com")
    planted = "attacker-chosen-session-id"
    client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    assert (await sign_in(client, "ada@example.com")).status_code == 303
    issued = session_cookie(client)
    assert issued
    assert issued != planted
    async with make_client(app) as attacker:
        attacker.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
        assert (await attacker.get("/calendar")).status_code == 303


async def test_signing_in_again_ends_the_previous_session(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    await create_user(app, "bob@example.com")
    await sign_in(client, "ada@example.com")
    first = session_cookie(client)
    # Signed in, /signin redirects home; the form posted from any page still signs in.
    token = csrf_of(await client.get("/"))
    credentials = {"email": "bob@example.com", "password": PASSWORD, "csrf_token": token}
    await client.post("/signin", data=credentials)
    second = session_cookie(client)
    assert first != second
    async with make_client(app) as old:
        old.cookies.set(SESSION_COOKIE, first or "", domain="testserver.local")
        assert (await old.get("/api/v1/me")).status_code == 401
    assert (await client.get("/api/v1/me")).json()["email"] == "bob@example.com"


async def test_cookie_flags(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    answer = await sign_in(client, "ada@example.com")
    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    # Plain HTTP on 127.0.0.1 is the one case without Secure.
    assert "Secure" not in cookie


async def test_cookies_are_secure_for_a_public_https_url(database, web_settings, clock) -> None:
    settings = web_settings.model_copy(update={"public_url": "https://contests.example.org"})
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        async with make_client(application) as http:
            page = await http.get("/signin")
            assert all("Secure" in c for c in page.headers.get_list("set-cookie"))
            assert "max-age=31536000" in page.headers["strict-transport-security"]


async def test_idle_expiry(app: FastAPI, client: WebClient, clock: MutableClock) -> None:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    clock.advance(timedelta(hours=47))
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.advance(timedelta(hours=47))  # seen 47 h ago: still within 48 h of idle
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.advance(timedelta(hours=48, seconds=1))
    assert (await client.get("/api/v1/me")).status_code == 401
    # The next sign-in clears the expired row away.
    await sign_in(client, "ada@example.com")
    assert await session_rows(app) == 1


async def test_absolute_expiry_despite_activity(
    app: FastAPI, client: WebClient, clock: MutableClock
) -> None:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    for _ in range(13):
        clock.advance(timedelta(days=1))
        assert (await client.get("/api/v1/me")).status_code == 200
    clock.advance(timedelta(days=1))
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_sign_out_ends_only_this_session(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    async with make_client(app, ip="198.51.100.9") as other:
        await sign_in(client, "ada@example.com")
        await sign_in(other, "ada@example.com")
        answer = await client.post("/signout", data={"csrf_token": csrf_of(await client.get("/"))})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        assert (await client.get("/api/v1/me")).status_code == 401
        assert (await other.get("/api/v1/me")).status_code == 200


async def test_sign_out_everywhere(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    async with make_client(app, ip="198.51.100.9") as other:
        await sign_in(client, "ada@example.com")
        await sign_in(other, "ada@example.com")
        token = csrf_of(await client.get("/"))
        answer = await client.post("/signout/everywhere", data={"csrf_token": token})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin"
        assert (await other.get("/api/v1/me")).status_code == 401
        assert await session_rows(app) == 0


async def test_role_change_ends_the_users_sessions_and_rotates_the_admins(
    app: FastAPI, client: WebClient
) -> None:
    admin = await create_user(app, "root@example.com", Role.ADMIN)
    member = await create_user(app, "ada@example.com")
    await create_user(app, "second@example.com", Role.ADMIN)
    async with make_client(app, ip="198.51.100.9") as member_http:
        await sign_in(member_http, "ada@example.com")
        await sign_in(client, "root@example.com")
        token = csrf_of(await client.get("/admin"))
        promoted = await client.post(
            f"/admin/users/{member.id}/role", data={"role": "coach", "csrf_token": token}
        )
        assert promoted.status_code == 303
        assert (await member_http.get("/api/v1/me")).status_code == 401
        await sign_in(member_http, "ada@example.com")
        assert (await member_http.get("/api/v1/me")).json()["role"] == "coach"
    before = session_cookie(client)
    demoted = await client.post(
        f"/admin/users/{admin.id}/role", data={"role": "member", "csrf_token": token}
    )
    assert demoted.status_code == 303
    after = session_cookie(client)
    assert after
    assert after != before
    me = await client.get("/api/v1/me")
    assert me.json()["role"] == "member"
    async with app.state.cpsync.db.session() as session:
        assert await session.get(UserSession, token_hash(before or "")) is None


async def test_the_last_admin_cannot_be_demoted(app: FastAPI, client: WebClient) -> None:
    admin = await create_user(app, "root@example.com", Role.ADMIN)
    await sign_in(client, "root@example.com")
    token = csrf_of(await client.get("/admin"))
    answer = await client.post(
        f"/admin/users/{admin.id}/role", data={"role": "member", "csrf_token": token}
    )
    # The admin page again, with the reason next to that user's role form.
    assert answer.status_code == 409
    assert f'id="user-{admin.id}-error"' in answer.text
    assert "This is the last admin" in answer.text
    assert "<h1>Admin</h1>" in answer.text
    assert (await client.get("/api/v1/me")).json()["role"] == "admin"


async def test_wrong_password_and_unknown_email_look_the_same(
    app: FastAPI, client: WebClient
) -> None:
    await create_user(app, "ada@example.com")
    token = csrf_of(await client.get("/signin"))
    wrong = await client.post(
        "/signin",
        data={"email": "ada@example.com", "password": "nope nope nope", "csrf_token": token},
    )
    unknown = await client.post(
        "/signin", data={"email": "zed@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert SESSION_COOKIE not in client.cookies


async def test_next_only_goes_to_this_site(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com")
    token = csrf_of(await client.get("/signin"))
    for target, expected in [
        ("/admin?x=1", "/admin?x=1"),
        ("//evil.example", "/calendar"),
        ("https://evil.example", "/calendar"),
        ("/\\evil.example", "/calendar"),
    ]:
        answer = await client.post(
            "/signin",
            data={
                "email": "ada@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
        )
        assert answer.headers["location"] == expected
        token = csrf_of(await client.get("/"))
