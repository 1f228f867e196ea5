"""Every form answers in words for people, from one place (cpsync.web.validation)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from cpsync.accounts.models import Role
from tests.web.conftest import WebClient, csrf_of, sign_in_new

PYDANTIC_WORDS = ("String should", "Input should", "Field required", "Value error", "above 0.0")


def assert_plain_words(text: str) -> None:
    for words in PYDANTIC_WORDS:
        assert words not in text


async def test_student_form_asks_for_a_name(app: FastAPI, client: WebClient) -> None:
    token = await sign_in_new(app, client, Role.COACH)
    page = await client.post(
        "/students/new",
        data={"csrf_token": token, "name": "  ", "handle": "tourist", "email": "not-an-address"},
    )
    assert page.status_code == 422
    assert "Enter a name." in page.text
    assert "Enter an email address like name@example.com." in page.text
    assert_plain_words(page.text)


async def test_preferences_say_which_number_is_wanted(app: FastAPI, client: WebClient) -> None:
    token = await sign_in_new(app, client)
    page = await client.post(
        "/calendar",
        data={"csrf_token": token, "platforms": "codeforces", "max_duration_hours": "0"},
    )
    assert page.status_code == 422
    assert "Enter a number of hours above 0." in page.text
    assert_plain_words(page.text)
    page = await client.post(
        "/calendar", data={"csrf_token": token, "max_duration_hours": "2", "hour_from": "25"}
    )
    assert "Choose at least one." in page.text
    assert "Enter an hour up to 23." in page.text
    assert_plain_words(page.text)


async def test_sign_in_asks_for_the_address(client: WebClient) -> None:
    token = csrf_of(await client.get("/signin"))
    page = await client.post("/signin", data={"csrf_token": token, "email": "", "password": "x"})
    assert page.status_code == 422
    assert "Enter an email address." in page.text
    assert_plain_words(page.text)


async def test_a_form_missing_a_field_gets_a_page_that_names_it(
    app: FastAPI, client: WebClient
) -> None:
    token = await sign_in_new(app, client)
    # The user name and password may stay empty (the address can carry them); the address not.
    page = await client.post("/calendar/sync/caldav", data={"csrf_token": token, "username": "a"})
    assert page.status_code == 422
    assert "Enter the calendar&#39;s address." in page.text
    assert_plain_words(page.text)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"type": "string_too_long", "loc": ("group",), "ctx": {"max_length": 100}},
            "Use at most 100 characters.",
        ),
        ({"type": "greater_than", "loc": ("x",), "ctx": {"gt": 0.0}}, "Enter a number above 0."),
        ({"type": "missing", "loc": ("body", "url")}, "Enter the calendar's address."),
        ({"type": "int_parsing", "loc": ("inactive_days",)}, "Enter a whole number."),
        (
            {
                "type": "value_error",
                "loc": ("email",),
                "ctx": {"error": ValueError("value is not a valid email address: no @")},
            },
            "Enter a valid email address.",
        ),
        ({"type": "something_new", "loc": ("x",)}, "Check this value."),
    ],
)
def test_messages(item: dict, expected: str) -> None:
    from cpsync.web.validation import human_message

    assert human_message(item) == expected
