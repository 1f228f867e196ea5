"""Google sign-in: the OAuth 2.0 authorization-code flow with PKCE (S256), via Authlib.

`begin` makes a random state and code verifier, keeps them in the cache for ten minutes
under the state's hash, and returns Google's authorization URL (offline access, so Google
issues a refresh token). `finish` takes the state back exactly once, exchanges the code
with the verifier and reads the user's profile. `revoke` withdraws a deleted account's
grants.

Authlib's `AsyncOAuth2Client` does its own HTTP (it is an httpx client): this is the one
sanctioned exception to "every outbound call goes through cpsync.http". Google's endpoint
URLs come from settings, so tests point them at a local fake authorization server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx, which
    # is what cpsync uses everywhere else; the fallback is supported.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
        OAuthError,
    )

from cpsync.accounts.service import GoogleProfile, GoogleSignInError
from cpsync.cache import Cache
from cpsync.settings import Settings

log = logging.getLogger(__name__)
SCOPES = "openid email profile"
STATE_TTL_SECONDS = 600
STATE_COOKIE = "cpsync_oauth_state"


@dataclass(frozen=True, slots=True)
class GoogleTokens:
    access_token: str
    refresh_token: str | None
    scope: str


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    code_verifier: str
    next_url: str


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url}/auth/google/callback"


def _client(settings: Settings) -> Any:
    return AsyncOAuth2Client(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        scope=SCOPES,
        redirect_uri=redirect_uri(settings),
        code_challenge_method="S256",
        timeout=settings.http_timeout_seconds,
    )


def _state_key(state: str) -> str:
    return "oauth-state:" + hashlib.sha256(state.encode()).hexdigest()


async def begin(settings: Settings, cache: Cache, next_url: str) -> tuple[str, str]:
    """(authorization URL, state) for a new sign-in attempt."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    pending = json.dumps({"verifier": verifier, "next": next_url}).encode()
    await cache.set(_state_key(state), pending, STATE_TTL_SECONDS)
    async with _client(settings) as client:
        url, _ = client.create_authorization_url(
            settings.google_authorize_url,
            state=state,
            code_verifier=verifier,
            access_type="offline",
            prompt="consent",
            include_granted_scopes="true",
        )
    return str(url), state


async def take_state(cache: Cache, state: str) -> PendingSignIn | None:
    """The pending attempt for `state`, at most once, and only within its lifetime."""
    raw = await cache.pop(_state_key(state))
    if raw is None:
        return None
    stored = json.loads(raw)
    return PendingSignIn(code_verifier=stored["verifier"], next_url=stored["next"])


async def finish(
    settings: Settings, code: str, pending: PendingSignIn
) -> tuple[GoogleProfile, GoogleTokens]:
    async with _client(settings) as client:
        try:
            token = await client.fetch_token(
                settings.google_token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.code_verifier,
            )
            answer = await client.get(settings.google_userinfo_url)
        except OAuthError as exc:
            raise GoogleSignInError(f"Google refused the sign-in: {exc.error}.") from exc
        except Exception as exc:
            # Authlib surfaces transport trouble as plain httpx errors.
            raise GoogleSignInError("Google could not be reached; try again.") from exc
    if answer.status_code != 200:
        raise GoogleSignInError("Google did not return your profile; try again.")
    return _profile(answer.json()), _tokens(token)


async def revoke(settings: Settings, refresh_tokens: Sequence[str]) -> None:
    """Ask Google to withdraw each grant. Best effort: the account is deleted either way,
    so a failure is logged (without the token) and the next token is still tried."""
    if not refresh_tokens or not settings.google_enabled:
        return
    async with _client(settings) as client:
        for token in refresh_tokens:
            try:
                answer = await client.revoke_token(
                    settings.google_revoke_url,
                    token=token,
                    token_type_hint="refresh_token",  # noqa: S106 - a label
                )
            except Exception as exc:  # transport trouble arrives as plain httpx errors
                log.warning("accounts.google.revoke_failed error=%s", type(exc).__name__)
                continue
            if answer.status_code != 200:
                log.warning("accounts.google.revoke_refused status=%s", answer.status_code)


def _profile(document: Any) -> GoogleProfile:
    if not isinstance(document, dict) or not document.get("sub") or not document.get("email"):
        raise GoogleSignInError("Google's profile answer lacks an account id or email.")
    return GoogleProfile(
        subject=str(document["sub"]),
        email=str(document["email"]).strip().lower(),
        email_verified=document.get("email_verified") in (True, "true"),
        name=str(document.get("name") or ""),
    )


def _tokens(token: Any) -> GoogleTokens:
    return GoogleTokens(
        access_token=str(token.get("access_token", "")),
        refresh_token=token.get("refresh_token") or None,
        scope=str(token.get("scope", SCOPES)),
    )
