"""Google sign-in on the one OAuth flow (`cpsync.oauth`): scope `openid email profile`,
callback `/auth/google/callback`. `begin` starts an attempt that remembers where to go
next; `take_state` hands it back once; `finish` exchanges the code and reads the user's
profile. `revoke` withdraws a deleted account's grants.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cpsync.accounts.service import GoogleProfile, GoogleSignInError
from cpsync.cache import Cache
from cpsync.oauth import STATE_TTL_SECONDS, GoogleOAuth, OAuthError, take
from cpsync.settings import Settings

log = logging.getLogger(__name__)
SCOPES = "openid email profile"
STATE_COOKIE = "cpsync_oauth_state"
PURPOSE = "signin"
__all__ = ["STATE_COOKIE", "STATE_TTL_SECONDS", "begin", "finish", "revoke", "take_state"]


@dataclass(frozen=True, slots=True)
class GoogleTokens:
    access_token: str
    refresh_token: str | None
    scope: str


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    code_verifier: str
    next_url: str


def _flow(settings: Settings) -> GoogleOAuth:
    return GoogleOAuth(settings, SCOPES, "/auth/google/callback", purpose=PURPOSE)


async def begin(settings: Settings, cache: Cache, next_url: str) -> tuple[str, str]:
    """(authorization URL, state) for a new sign-in attempt."""
    return await _flow(settings).begin(cache, {"next": next_url}, include_granted_scopes="true")


async def take_state(cache: Cache, state: str) -> PendingSignIn | None:
    """The pending attempt for `state`, at most once, and only within its lifetime."""
    stored = await take(cache, PURPOSE, state)
    if stored is None:
        return None
    return PendingSignIn(code_verifier=stored["verifier"], next_url=stored["next"])


async def finish(
    settings: Settings, code: str, pending: PendingSignIn
) -> tuple[GoogleProfile, GoogleTokens]:
    flow = _flow(settings)
    async with flow.client() as client:
        try:
            token = await flow.exchange(client, code, pending.code_verifier)
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
    async with _flow(settings).client() as client:
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
