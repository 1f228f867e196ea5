"""Sign-up without account enumeration, email verification, password reset and change,
through the routes, with links read out of the emails a real SMTP receiver got."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select

from cpsync.accounts.models import EmailToken, User
from tests.accounts.conftest import link_in, messages_to, text_of
from tests.recordings import MutableClock
from tests.smtp_receiver import Inbox
from tests.web.conftest import PASSWORD, WebClient, create_user, csrf_of, make_client, sign_in

NEW_PASSWORD = "a brand new passphrase"


async def stored_user(app: FastAPI, email: str) -> User | None:
    async with app.state.cpsync.db.session() as session:
        found: User | None = await session.scalar(select(User).where(User.email == email))
        return found


async def sign_up(http: WebClient, email: str, password: str = PASSWORD) -> tuple[int, str]:
    token = csrf_of(await http.get("/signup"))
    fields = {"email": email, "password": password, "password_confirm": password}
    answer = await http.post("/signup", data={**fields, "csrf_token": token})
    return answer.status_code, answer.headers.get("location", "")


async def signed_in_as(http: WebClient) -> str | None:
    me = await http.get("/api/v1/me")
    return me.json()["email"] if me.status_code == 200 else None


async def test_signup_answers_alike_whether_or_not_the_address_is_known(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox
) -> None:
    await create_user(mail_app, "known@example.com")
    async with make_client(mail_app, ip="198.51.100.4") as other:
        known = await sign_up(other, "known@example.com", "someone else's password")
        known_page = await other.get(known[1])
        assert await signed_in_as(other) is None
    new = await sign_up(mail_client, "new@example.com")
    new_page = await mail_client.get(new[1])
    assert known == new == (303, "/signup/sent")
    assert "Check your inbox" in new_page.text
    known_text = known_page.text.replace(csrf_of(known_page), "")
    assert known_text == new_page.text.replace(csrf_of(new_page), "")
    assert await signed_in_as(mail_client) is None
    # The owner of the known address hears about the attempt; nothing about it changed.
    [attempt] = messages_to(inbox, "known@example.com")
    assert "already has one" in text_of(attempt)
    assert "/signin/forgot" in text_of(attempt)
    assert await sign_in(mail_client, "known@example.com", "someone else's password")
    assert await signed_in_as(mail_client) is None
    [welcome] = messages_to(inbox, "new@example.com")
    assert "/account/verify?token=" in text_of(welcome)


async def test_without_email_signup_answers_alike_and_sends_to_signin(
    app: FastAPI, client: WebClient
) -> None:
    await create_user(app, "known@example.com")
    known = await sign_up(client, "known@example.com", "someone else's password")
    new = await sign_up(client, "new@example.com")
    assert known == new == (303, "/signin")
    assert "your account is ready" in (await client.get(new[1])).text
    user = await stored_user(app, "new@example.com")
    assert user is not None
    assert user.email_verified


async def test_the_emailed_link_verifies_the_address_once(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox, clock: MutableClock
) -> None:
    await sign_up(mail_client, "ada@example.com")
    link = link_in(messages_to(inbox, "ada@example.com")[0], "/account/verify")
    user = await stored_user(mail_app, "ada@example.com")
    assert user is not None
    assert not user.email_verified
    async with mail_app.state.cpsync.db.session() as session:
        stored = (await session.scalars(select(EmailToken.token_hash))).all()
    assert link.split("token=", 1)[1] not in stored  # only the hash is kept
    # Opening the link uses nothing up (mail scanners fetch links); the button does.
    page = await mail_client.get(link)
    assert page.status_code == 200
    assert "Confirm my address" in page.text
    token = link.split("token=", 1)[1]
    confirm = {"token": token, "csrf_token": csrf_of(page)}
    answer = await mail_client.post("/account/verify", data=confirm)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin"
    user = await stored_user(mail_app, "ada@example.com")
    assert user is not None
    assert user.email_verified
    again = await mail_client.post("/account/verify", data=confirm)
    assert again.status_code == 400
    assert "expired or was already used" in again.text
    assert (await mail_client.get(link)).status_code == 400


async def test_an_unverified_user_sees_a_banner_and_gets_a_fresh_link(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox, clock: MutableClock
) -> None:
    await sign_up(mail_client, "ada@example.com")
    first = link_in(messages_to(inbox, "ada@example.com")[0], "/account/verify")
    await sign_in(mail_client, "ada@example.com")
    page = await mail_client.get("/calendar")
    assert page.status_code == 200
    assert "Please confirm your email address" in page.text
    clock.advance(timedelta(minutes=1, seconds=1))  # one email a minute per address
    resent = await mail_client.post("/account/verify/resend", data={"csrf_token": csrf_of(page)})
    assert resent.headers["location"] == "/account"
    second = link_in(messages_to(inbox, "ada@example.com")[1], "/account/verify")
    assert (await mail_client.get(first)).status_code == 400  # replaced by the new one
    clock.advance(timedelta(hours=47))
    page = await mail_client.get(second)
    answer = await mail_client.post(
        "/account/verify",
        data={"token": second.split("token=", 1)[1], "csrf_token": csrf_of(page)},
    )
    assert answer.headers["location"] == "/account"
    assert "Please confirm" not in (await mail_client.get("/calendar")).text


async def test_a_verification_link_expires(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox, clock: MutableClock
) -> None:
    await sign_up(mail_client, "ada@example.com")
    link = link_in(messages_to(inbox, "ada@example.com")[0], "/account/verify")
    clock.advance(timedelta(hours=48, seconds=1))
    assert (await mail_client.get(link)).status_code == 400


async def test_password_reset_by_email_ends_every_session(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox
) -> None:
    await create_user(mail_app, "ada@example.com")
    async with make_client(mail_app, ip="198.51.100.5") as laptop:
        await sign_in(laptop, "ada@example.com")
        assert await signed_in_as(laptop) == "ada@example.com"
        page = await mail_client.get("/signin/forgot")
        answers = []
        for email in ("nobody@example.com", "ada@example.com"):
            answer = await mail_client.post(
                "/signin/forgot", data={"email": email, "csrf_token": csrf_of(page)}
            )
            answers.append((answer.status_code, answer.headers["location"]))
        assert answers[0] == answers[1] == (303, "/signin/forgot/sent")
        assert [m["To"] for m in inbox.messages] == ["ada@example.com"]
        link = link_in(inbox.messages[0], "/signin/reset")
        form = await mail_client.get(link)
        assert form.status_code == 200
        token = link.split("token=", 1)[1]
        fields = {"token": token, "csrf_token": csrf_of(form)}
        mismatch = {**fields, "password": NEW_PASSWORD, "password_confirm": "different"}
        assert (await mail_client.post("/signin/reset", data=mismatch)).status_code == 422
        done = {**fields, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
        answer = await mail_client.post("/signin/reset", data=done)
        assert answer.headers["location"] == "/signin"
        assert await signed_in_as(laptop) is None
        assert (await mail_client.post("/signin/reset", data=done)).status_code == 400
    await sign_in(mail_client, "ada@example.com")
    assert await signed_in_as(mail_client) is None
    await sign_in(mail_client, "ada@example.com", NEW_PASSWORD)
    assert await signed_in_as(mail_client) == "ada@example.com"


async def test_a_reset_link_expires_and_only_the_newest_works(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox, clock: MutableClock
) -> None:
    await create_user(mail_app, "ada@example.com")
    page = await mail_client.get("/signin/forgot")
    ask = {"email": "ada@example.com", "csrf_token": csrf_of(page)}
    for wait in (0, 30, 31):
        clock.advance(timedelta(seconds=wait))
        await mail_client.post("/signin/forgot", data=ask)
    # At most one email a minute to an address, however many ask.
    assert len(inbox.messages) == 2
    older, newer = (link_in(message, "/signin/reset") for message in inbox.messages)
    assert (await mail_client.get(older)).status_code == 400
    assert (await mail_client.get(newer)).status_code == 200
    clock.advance(timedelta(minutes=61))
    assert (await mail_client.get(newer)).status_code == 400
    async with mail_app.state.cpsync.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(EmailToken)) == 1


async def test_password_change_needs_the_current_one_and_ends_other_sessions(
    mail_app: FastAPI, mail_client: WebClient
) -> None:
    await create_user(mail_app, "ada@example.com")
    async with make_client(mail_app, ip="198.51.100.6") as phone:
        await sign_in(phone, "ada@example.com")
        await sign_in(mail_client, "ada@example.com")
        token = csrf_of(await mail_client.get("/account"))
        change = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": token}
        wrong = await mail_client.post(
            "/account/password", data={**change, "current_password": "not it at all"}
        )
        assert wrong.status_code == 422
        assert "not your current password" in wrong.text
        assert await signed_in_as(phone) == "ada@example.com"
        answer = await mail_client.post(
            "/account/password", data={**change, "current_password": PASSWORD}
        )
        assert answer.headers["location"] == "/account"
        assert await signed_in_as(mail_client) == "ada@example.com"
        assert await signed_in_as(phone) is None
        await sign_in(phone, "ada@example.com", NEW_PASSWORD)
        assert await signed_in_as(phone) == "ada@example.com"


async def test_account_forms_need_csrf_and_share_the_signin_rate_limit(
    mail_app: FastAPI, mail_client: WebClient, inbox: Inbox
) -> None:
    await create_user(mail_app, "ada@example.com")
    await mail_client.get("/signin/forgot")
    forged = await mail_client.post("/signin/forgot", data={"email": "ada@example.com"})
    assert forged.status_code == 403
    assert inbox.messages == []
    token = csrf_of(await mail_client.get("/signin/forgot"))
    limit = mail_app.state.cpsync.settings.rate_limit_auth_requests
    # Twice the budget and more: even if a window boundary falls inside the loop, one
    # window sees more requests than it allows.
    statuses = [
        (
            await mail_client.post(
                "/signin/forgot", data={"email": "ada@example.com", "csrf_token": token}
            )
        ).status_code
        for _ in range(2 * limit + 2)
    ]
    assert 429 in statuses
    assert set(statuses) == {303, 429}
    assert len(inbox.messages) == 1  # the others fall within the minute's cooldown


async def test_guessing_the_current_password_hits_the_signin_rate_limit(
    mail_app: FastAPI, mail_client: WebClient
) -> None:
    await create_user(mail_app, "ada@example.com")
    await sign_in(mail_client, "ada@example.com")
    token = csrf_of(await mail_client.get("/account"))
    guess = {
        "current_password": "a wrong guess",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
        "csrf_token": token,
    }
    limit = mail_app.state.cpsync.settings.rate_limit_auth_requests
    statuses = [
        (await mail_client.post("/account/password", data=guess)).status_code
        for _ in range(2 * limit + 2)
    ]
    assert set(statuses) == {422, 429}
