"""CSRF tokens: a synchronizer token per signed-in session, and one for anonymous visitors.

Signed-in: the token is a random value stored with the server-side session.
Anonymous (sign-in and sign-up forms): a signed pre-session cookie carries a random id and
the token is an HMAC of that id under the app's secret key, so a page from another site can
neither read nor forge it. Every state-changing request must send the token, as the form
field `csrf_token` or the `X-CSRF-Token` header (htmx and JSON clients).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, Signer

from cpsync.errors import CpsyncError

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CsrfError(CpsyncError):
    status_code = 403


class AnonymousCsrf:
    def __init__(self, secret_key: bytes) -> None:
        self._secret_key = secret_key
        self._signer = Signer(secret_key, salt="cpsync.presession")

    def new_cookie(self) -> str:
        return self._signer.sign(secrets.token_urlsafe(24)).decode()

    def presession_id(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def token_for(self, presession_id: str) -> str:
        return hmac.new(
            self._secret_key, b"csrf:" + presession_id.encode(), hashlib.sha256
        ).hexdigest()


def tokens_match(expected: str | None, submitted: str | None) -> bool:
    if not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
