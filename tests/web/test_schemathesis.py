"""Property-based requests generated from the app's OpenAPI schema: no answer is a 5xx.

Runs in-process over ASGI, signed in (so the private operations are exercised, not just
their 401), with the session's CSRF token on every request. Bounded to keep it quick.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from cpsync.accounts.crypto import load_keyring
from cpsync.accounts.models import Role, UserSession
from cpsync.accounts.service import AccountService
from cpsync.accounts.sessions import SESSION_COOKIE, SessionPolicy, token_hash
from cpsync.app import create_app
from cpsync.clock import utc_now
from cpsync.db import open_database
from cpsync.settings import Settings


async def _seed(settings: Settings) -> tuple[str, str]:
    db = await open_database(settings)
    try:
        async with db.session() as session, session.begin():
            service = AccountService(
                session, load_keyring(settings), SessionPolicy.from_settings(settings), utc_now
            )
            user = await service.create_user("fuzz@example.com", "a long password", Role.ADMIN)
            token = await service.start_session(user)
            row = await session.get(UserSession, token_hash(token))
            assert row is not None
            return token, row.csrf_token
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'cpsync.db'}",
        refresh_interval_minutes=0,
        rate_limit_requests=100_000,
    )
    token, csrf = asyncio.run(_seed(settings))
    return settings, token, csrf


@pytest.fixture(scope="module")
def api_schema(signed_in: tuple[Settings, str, str]) -> schemathesis.BaseSchema:
    settings, _, _ = signed_in
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


def test_no_server_errors(
    api_schema: schemathesis.BaseSchema, signed_in: tuple[Settings, str, str]
) -> None:
    _, token, csrf = signed_in
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9

    statuses: dict[str, set[int]] = {}
    for operation in operations:
        exercise(operation, token, csrf, statuses.setdefault(operation.label, set()))
    # Signed in and served: every operation answered successfully at least once.
    # (Random feed tokens, contest keys and sync job ids are 404s by design; so are random
    # student ids, and adding a student needs a real Codeforces handle: tests/students.)
    missing = {
        label: codes
        for label, codes in statuses.items()
        if not any(200 <= c < 400 for c in codes)
        and ".ics" not in label
        and "{job_id}" not in label
        and "{student_id}" not in label
        and label != "POST /api/v1/students"
    }
    assert not missing, missing


def exercise(operation: Any, token: str, csrf: str, seen: set[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(cookies={SESSION_COOKIE: token}, headers={"X-CSRF-Token": csrf})
        seen.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()
