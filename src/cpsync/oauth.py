"""Google's OAuth 2.0 authorization-code flow with PKCE (S256), via Authlib: the one flow
behind both Google sign-in (accounts) and connecting a Google calendar (calendars), each
with its own scope, callback and purpose.

`begin` makes a random state and code verifier, keeps them with the caller's own pending
values in the cache for ten minutes under the state's hash (namespaced by purpose), and
returns Google's authorization URL (offline access, so Google issues a refresh token).
`take` hands the pending values back exactly once. `exchange` trades the code, with the
verifier, for tokens on a client the caller may go on using (sign-in reads the profile).

Authlib's `AsyncOAuth2Client` does its own HTTP (it is an httpx client): this is the one
sanctioned exception to "every outbound call goes through cpsync.http". Google's endpoint
URLs come from settings, so tests point them at a local fake authorization server.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import warnings
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

from cpsync.cache import Cache
from cpsync.settings import Settings

STATE_TTL_SECONDS = 600
__all__ = ["STATE_TTL_SECONDS", "GoogleOAuth", "OAuthError", "take"]


@dataclass(frozen=True, slots=True)
class GoogleOAuth:
    settings: Settings
    scope: str
    callback_path: str  # on this deployment's public URL
    purpose: str  # keeps one flow's states from answering the other's callback

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.public_url}{self.callback_path}"

    def client(self) -> Any:
        return AsyncOAuth2Client(
            client_id=self.settings.google_client_id,
            client_secret=self.settings.google_client_secret,
            scope=self.scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self.settings.http_timeout_seconds,
        )

    async def begin(
        self, cache: Cache, pending: dict[str, Any], **authorize_params: str
    ) -> tuple[str, str]:
        """(authorization URL, state) for a new attempt; `pending` comes back from `take`."""
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        stored = json.dumps({**pending, "verifier": verifier}).encode()
        await cache.set(_state_key(self.purpose, state), stored, STATE_TTL_SECONDS)
        async with self.client() as client:
            url, _ = client.create_authorization_url(
                self.settings.google_authorize_url,
                state=state,
                code_verifier=verifier,
                access_type="offline",
                prompt="consent",
                **authorize_params,
            )
        return str(url), state

    async def take(self, cache: Cache, state: str) -> dict[str, Any] | None:
        return await take(cache, self.purpose, state)

    async def exchange(self, client: Any, code: str, verifier: str) -> dict[str, Any]:
        """The token answer for `code`. Authlib raises OAuthError for a refusal and plain
        httpx errors for transport trouble; each caller words them for its own page."""
        token: dict[str, Any] = await client.fetch_token(
            self.settings.google_token_url,
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
        )
        return token


async def take(cache: Cache, purpose: str, state: str) -> dict[str, Any] | None:
    """The pending values of `state` (with its "verifier"), at most once, in time."""
    raw = await cache.pop(_state_key(purpose, state)) if state else None
    if raw is None:
        return None
    pending: dict[str, Any] = json.loads(raw)
    return pending


def _state_key(purpose: str, state: str) -> str:
    return f"oauth-state:{purpose}:" + hashlib.sha256(state.encode()).hexdigest()
