"""Every form field validated, with a message next to it and nothing saved on error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cpsync.accounts.models import Preferences, User
from cpsync.platforms.registry import PLATFORMS
from tests.web.conftest import WebClient, create_user, csrf_of, make_client, sign_in


@pytest.fixture
def database_url(tmp_path) -> str:
    # Validation does not depend on the engine; the route tests cover both databases.
    return f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}"


async def count_users(app: FastAPI) -> int:
    async with app.state.cpsync.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def stored_preferences(app: FastAPI) -> dict[str, Any]:
    async with app.state.cpsync.db.session() as session:
        row = await session.scalar(select(Preferences))
        assert row is not None
        return row.as_dict()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password_confirm": "something else entirely"}, "password_confirm"),
        ({"password": "p" * 2000, "password_confirm": "p" * 2000}, "password"),
    ],
)
async def test_signup_rejects_invalid_input(
    app: FastAPI, client: WebClient, fields: dict[str, str], field: str
) -> None:
    token = csrf_of(await client.get("/signup"))
    submitted = {
        "email": "ada@example.com",
        "password": "a long password",
        "password_confirm": "a long password",
    }
    submitted.update(fields)
    answer = await client.post("/signup", data={**submitted, "csrf_token": token})
    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text
    assert await count_users(app) == 0


async def test_signup_answers_alike_for_a_known_address(app: FastAPI, client: WebClient) -> None:
    """No SMTP here: both answers send the visitor to sign in, neither says "exists"."""
    token = csrf_of(await client.get("/signup"))
    fields = {
        "email": " Ada@Example.com ",
        "password": "a long password",
        "password_confirm": "a long password",
    }
    answer = await client.post("/signup", data={**fields, "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin"
    await sign_in(client, "ada@example.com", "a long password")
    assert (await client.get("/api/v1/me")).json()["email"] == "ada@example.com"
    async with make_client(app, ip="198.51.100.3") as other:
        token = csrf_of(await other.get("/signup"))
        again = await other.post("/signup", data={**fields, "csrf_token": token})
        assert (again.status_code, again.headers["location"]) == (303, answer.headers["location"])
        assert "already exists" not in (await other.get(again.headers["location"])).text
    assert await count_users(app) == 1


GOOD = {
    "platforms": ["codeforces", "atcoder"],
    "max_duration_hours": "3",
    "exclude_pattern": "div\\. 1",
    "hour_from": "18",
    "hour_to": "23",
    "weekdays": ["5", "6"],
    "reminder_minutes": ["60", "", "10", "", ""],
    "color": "7",
    "timezone": "Asia/Kolkata",
}


async def _calendar_client(app: FastAPI, client: WebClient) -> str:
    await create_user(app, "ada@example.com")
    await sign_in(client, "ada@example.com")
    return csrf_of(await client.get("/calendar"))


async def test_valid_preferences_are_saved(app: FastAPI, client: WebClient) -> None:
    token = await _calendar_client(app, client)
    answer = await client.post("/calendar", data={**GOOD, "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/calendar")
    assert await stored_preferences(app) == {
        "platforms": ["codeforces", "atcoder"],
        "max_duration_hours": 3.0,
        "exclude_pattern": "div\\. 1",
        "hour_from": 18,
        "hour_to": 23,
        "weekdays": [5, 6],
        "reminder_minutes": [60, 10],
        "color": "7",
        "timezone": "Asia/Kolkata",
    }
    page = await client.get(answer.headers["location"])
    assert "saved" in page.text
    assert 'id="exclude_pattern-error"' not in page.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platforms": []}, "platforms"),
        ({"platforms": ["codeforces", "myspace"]}, "platforms"),
        ({"max_duration_hours": "abc"}, "max_duration_hours"),
        ({"max_duration_hours": "-2"}, "max_duration_hours"),
        ({"max_duration_hours": "nan"}, "max_duration_hours"),
        ({"exclude_pattern": "(?=div)"}, "exclude_pattern"),
        ({"exclude_pattern": "(unclosed"}, "exclude_pattern"),
        ({"hour_from": "24"}, "hour_from"),
        ({"hour_from": "", "hour_to": "5"}, "hour_to"),
        ({"hour_from": "5", "hour_to": "5"}, "hour_to"),
        ({"weekdays": ["7"]}, "weekdays"),
        ({"weekdays": ["monday"]}, "weekdays"),
        ({"reminder_minutes": ["1", "2", "3", "4", "5", "6"]}, "reminder_minutes"),
        ({"reminder_minutes": ["-5"]}, "reminder_minutes"),
        ({"reminder_minutes": ["99999"]}, "reminder_minutes"),
        ({"color": "12"}, "color"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
async def test_invalid_preferences_save_nothing(
    app: FastAPI, client: WebClient, change: dict[str, Any], field: str
) -> None:
    token = await _calendar_client(app, client)
    before = await stored_preferences(app)
    answer = await client.post("/calendar", data={**GOOD, **change, "csrf_token": token})
    assert answer.status_code == 422, answer.text
    assert f'id="{field}-error"' in answer.text, answer.text[-3000:]
    assert await stored_preferences(app) == before


def test_every_platform_is_offered() -> None:
    assert set(GOOD["platforms"]) <= set(PLATFORMS)
