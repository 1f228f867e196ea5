from __future__ import annotations

from fastapi import FastAPI

from cpsync.accounts.models import Role
from tests.web.conftest import WebClient, create_user, csrf_of, sign_in


async def test_home_renders_for_anonymous(client: WebClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200, page.text
    assert csrf_of(page)


async def test_sign_in_and_see_calendar(app: FastAPI, client: WebClient) -> None:
    await create_user(app, "ada@example.com", Role.ADMIN)
    answer = await sign_in(client, "ada@example.com")
    assert answer.status_code == 303, answer.text
    page = await client.get("/calendar")
    assert page.status_code == 200, page.text
    assert "/feeds/" in page.text
    admin = await client.get("/admin")
    assert admin.status_code == 200, admin.text
