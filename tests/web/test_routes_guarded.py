"""Every route of the app, enumerated: state changes need the CSRF token, private pages a user."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from cpsync.accounts.models import Role
from cpsync.app import create_app
from tests.web.conftest import WebClient, create_user, csrf_of, make_client, sign_in

SAFE = {"GET", "HEAD", "OPTIONS"}
PUBLIC = {
    ("GET", "/"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/signin"),
    ("GET", "/signup"),
    ("POST", "/signin"),
    ("POST", "/signup"),
    ("POST", "/signout"),
    # Sign-up's answer, password reset and the emailed links: the emailed token is the key.
    ("GET", "/signup/sent"),
    ("GET", "/signin/forgot"),
    ("POST", "/signin/forgot"),
    ("GET", "/signin/forgot/sent"),
    ("GET", "/signin/reset"),
    ("POST", "/signin/reset"),
    ("GET", "/account/verify"),
    ("POST", "/account/verify"),
    ("GET", "/auth/google"),
    ("GET", "/auth/google/callback"),
    ("GET", "/api/v1/contests"),
    ("GET", "/api/v1/platforms"),
    ("GET", "/contests/{platform}/{key}.ics"),
    # Public by design: the unguessable token is the credential.
    ("GET", "/feeds/{token}.ics"),
}
SAMPLE_PARAMS = {
    "user_id": "1",
    "token": "x" * 43,
    "platform": "codeforces",
    "key": "1",
    "link_id": "1",
    "job_id": "x",
    "student_id": "1",
}


def enumerate_routes(app: FastAPI) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in app.routes:
        contexts = (
            list(route.effective_route_contexts())
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for item in contexts:
            methods = getattr(item, "methods", None) or set()
            found += [(method, item.path) for method in sorted(methods) if method != "HEAD"]
    return sorted(set(found))


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS[m.group(1)], path)


def routes_of_a_fresh_app(tmp_path) -> list[tuple[str, str]]:
    from cpsync.settings import Settings

    return enumerate_routes(create_app(Settings(_env_file=None, data_dir=tmp_path)))


def test_the_enumeration_sees_every_router(tmp_path) -> None:
    routes = routes_of_a_fresh_app(tmp_path)
    assert ("POST", "/calendar") in routes
    assert ("PUT", "/api/v1/preferences") in routes
    assert ("GET", "/feeds/{token}.ics") in routes
    assert len(routes) >= 25


async def _admin_client(app: FastAPI, index: int) -> WebClient:
    email = f"admin{index}@example.com"
    await create_user(app, email, Role.ADMIN)
    # One client address each, so the sign-in budget is not what answers.
    http = make_client(app, ip=f"198.51.100.{index + 1}")
    assert (await sign_in(http, email)).status_code == 303
    return http


async def test_state_changing_routes_reject_missing_or_wrong_csrf(app: FastAPI) -> None:
    unsafe = [(m, p) for m, p in enumerate_routes(app) if m not in SAFE]
    assert len(unsafe) >= 8
    for index, (method, path) in enumerate(unsafe):
        http = await _admin_client(app, index)
        try:
            token = csrf_of(await http.get("/"))
            url = concrete(path)
            missing = await http.request(method, url, data={"role": "member"})
            wrong = await http.request(
                method, url, data={"role": "member", "csrf_token": token[:-2] + "xx"}
            )
            as_header = await http.request(method, url, headers={"X-CSRF-Token": "nope"}, json={})
            for answer in (missing, wrong, as_header):
                assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
            # The same request with the right token gets past the check (proves the test can fail).
            good = await http.request(method, url, headers={"X-CSRF-Token": token}, json={})
            assert good.status_code != 403, (method, path, good.text)
        finally:
            await http.aclose()


async def test_private_routes_reject_anonymous_requests(app: FastAPI, client: WebClient) -> None:
    private = [(m, p) for m, p in enumerate_routes(app) if (m, p) not in PUBLIC]
    assert ("GET", "/calendar") in private
    assert ("GET", "/admin") in private
    token = csrf_of(await client.get("/signin"))
    for method, path in private:
        answer = await client.request(
            method, concrete(path), headers={"X-CSRF-Token": token}, data={"csrf_token": token}
        )
        redirected = answer.status_code == 303 and answer.headers["location"].startswith("/signin")
        assert redirected or answer.status_code in (401, 403), (method, path, answer.status_code)


async def test_admin_routes_reject_members(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "member@example.com")
    await sign_in(client, "member@example.com")
    token = csrf_of(await client.get("/"))
    admin_routes = [(m, p) for m, p in enumerate_routes(app) if p.startswith("/admin")]
    assert len(admin_routes) == 8  # page, refresh, role, disable, delete, mode, invite, revoke
    for method, path in admin_routes:
        answer = await client.request(
            method, concrete(path), data={"csrf_token": token, "role": "admin"}
        )
        assert answer.status_code == 403, (method, path)


async def test_anonymous_forms_need_the_presession_token(app: FastAPI, client: WebClient) -> None:
    no_cookie = await client.post(
        "/signin", data={"email": "a@b.co", "password": "x", "csrf_token": "x"}
    )
    assert no_cookie.status_code == 403
    token = csrf_of(await client.get("/signin"))
    forged = await client.post(
        "/signin", data={"email": "a@b.co", "password": "x", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    real = await client.post(
        "/signin", data={"email": "a@b.co", "password": "wrong password", "csrf_token": token}
    )
    assert real.status_code == 401
    # Another visitor's token does not fit this visitor's cookie.
    async with make_client(app) as other:
        await other.get("/signin")
        stolen = await other.post(
            "/signin", data={"email": "a@b.co", "password": "x", "csrf_token": token}
        )
        assert stolen.status_code == 403


def test_public_list_names_only_real_routes(tmp_path) -> None:
    routes = set(routes_of_a_fresh_app(tmp_path))
    assert routes >= PUBLIC


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_unknown_methods_do_not_slip_through(client: WebClient, method: str) -> None:
    answer = await client.request(method, "/calendar")
    assert answer.status_code in (403, 405)
