"""Google sign-in meets the account rules: sign-up mode, disabled and unverified accounts."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import func, select, update

from cpsync.accounts.models import SiteSetting, User
from cpsync.accounts.service import REFRESH_TOKEN_PURPOSE
from tests.accounts.fake_google import FakeGoogle
from tests.accounts.test_google import consent, fake, google_app, links, start
from tests.recordings import RECORDED_AT
from tests.web.conftest import PASSWORD, create_user, csrf_of, make_client, sign_in

__all__ = ["fake", "google_app"]


async def change_user(app: FastAPI, email: str, **values: object) -> None:
    async with app.state.cpsync.db.session() as session:
        await session.execute(update(User).where(User.email == email).values(**values))
        await session.commit()


async def test_google_takes_over_an_address_someone_signed_up_with_unproven(
    google_app: FastAPI,
) -> None:
    squatted = await create_user(google_app, "ada@example.com")
    await change_user(google_app, "ada@example.com", email_verified_at=None)
    async with make_client(google_app, ip="198.51.100.30") as squatter:
        await sign_in(squatter, "ada@example.com")
        assert (await squatter.get("/api/v1/me")).status_code == 200
        async with make_client(google_app) as owner:
            assert (await owner.get(consent(await start(owner), "allow"))).status_code == 303
            assert (await owner.get("/api/v1/me")).json()["id"] == squatted.id
            assert "Please confirm" not in (await owner.get("/calendar")).text
        assert (await squatter.get("/api/v1/me")).status_code == 401
        refused = await sign_in(squatter, "ada@example.com", PASSWORD)
        assert refused.status_code == 401


async def test_google_creates_no_account_unless_signup_is_open(google_app: FastAPI) -> None:
    async with google_app.state.cpsync.db.session() as session:
        session.add(SiteSetting(name="signup_mode", value="invite", updated_at=RECORDED_AT))
        await session.commit()
    async with make_client(google_app) as http:
        answer = await http.get(consent(await start(http), "allow"))
        assert answer.status_code == 400
        assert "not open for new accounts" in answer.text
    async with google_app.state.cpsync.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
    # An existing account still signs in with Google.
    await create_user(google_app, "ada@example.com")
    async with make_client(google_app, ip="198.51.100.31") as http:
        assert (await http.get(consent(await start(http), "allow"))).status_code == 303


async def test_a_disabled_account_cannot_sign_in_with_google(google_app: FastAPI) -> None:
    await create_user(google_app, "ada@example.com")
    await change_user(google_app, "ada@example.com", disabled_at=RECORDED_AT)
    async with make_client(google_app) as http:
        answer = await http.get(consent(await start(http), "allow"))
        assert answer.status_code == 400
        assert "disabled by an admin" in answer.text
        assert (await http.get("/api/v1/me")).status_code == 401


async def test_deleting_an_account_revokes_its_google_grant(
    google_app: FastAPI, fake: FakeGoogle
) -> None:
    async with make_client(google_app) as http:
        assert (await http.get(consent(await start(http), "allow"))).status_code == 303
        [link] = await links(google_app)
        assert link.refresh_token_encrypted is not None
        keyring = google_app.state.resources.keyring
        refresh_token = keyring.decrypt(link.refresh_token_encrypted, REFRESH_TOKEN_PURPOSE)
        page = await http.get("/account")
        answer = await http.post(
            "/account/delete", data={"email": "ada@example.com", "csrf_token": csrf_of(page)}
        )
        assert answer.headers["location"] == "/signin"
    assert fake.revoked == [refresh_token]
    assert await links(google_app) == []
