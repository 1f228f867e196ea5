"""A local stand-in for Google's OAuth 2.0 authorization server (authorization-code flow).

/authorize checks the request like Google does (client id, registered redirect URI,
response_type=code, PKCE S256 challenge, state, access_type=offline) and shows a consent
step; /consent approves or denies it, redirecting back with a code or
`error=access_denied`. /token checks the client secret (Basic or form), the code (single
use, short-lived) and the PKCE verifier, then returns tokens; /userinfo returns the profile.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "cpsync-test-client.apps.example"
CLIENT_SECRET = "test-client-secret-not-real"


@dataclass
class Account:
    sub: str = "1001"
    email: str = "ada@example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"


@dataclass
class FakeGoogle:
    redirect_uris: set[str]
    account: Account = field(default_factory=Account)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, Account] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        return {
            "google_client_id": CLIENT_ID,
            "google_client_secret": CLIENT_SECRET,
            "google_authorize_url": f"{self.base_url}/authorize",
            "google_token_url": f"{self.base_url}/token",
            "google_userinfo_url": f"{self.base_url}/userinfo",
            "google_revoke_url": f"{self.base_url}/revoke",
        }

    # /authorize

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        problems = [
            query.get("client_id") != CLIENT_ID and "unknown client_id",
            query.get("redirect_uri") not in self.redirect_uris and "redirect_uri not registered",
            query.get("response_type") != "code" and "response_type must be code",
            query.get("code_challenge_method") != "S256" and "PKCE S256 required",
            len(query.get("code_challenge", "")) != 43 and "bad code_challenge",
            not query.get("state") and "state required",
            query.get("access_type") != "offline" and "access_type=offline expected",
            "email" not in query.get("scope", "").split() and "email scope expected",
        ]
        errors = [p for p in problems if p]
        if errors:
            return 400, {"Content-Type": "text/plain"}, ("; ".join(errors)).encode()
        request_id = secrets.token_urlsafe(8)
        with self.lock:
            self.pending[request_id] = dict(query)
        body = (
            f'<a href="/consent?request={request_id}&decision=allow">Allow</a> '
            f'<a href="/consent?request={request_id}&decision=deny">Deny</a>'
        )
        return 200, {"Content-Type": "text/html"}, body.encode()

    def consent(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            request = self.pending.pop(query.get("request", ""), None)
        if request is None:
            return 400, {"Content-Type": "text/plain"}, b"unknown consent request"
        back = {"state": request["state"]}
        if query.get("decision") != "allow":
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            with self.lock:
                self.codes[code] = {
                    "challenge": request["code_challenge"],
                    "redirect_uri": request["redirect_uri"],
                    "expires": time.monotonic() + 60,
                    "offline": request.get("access_type") == "offline",
                    "account": self.account,
                }
            back["code"] = code
        return 302, {"Location": f"{request['redirect_uri']}?{urlencode(back)}"}, b""

    # /token

    def token(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or grant["expires"] < time.monotonic():
            return _json(
                400,
                {"error": "invalid_grant", "error_description": "code unknown, used or expired"},
            )
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return _json(
                400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
            )
        verifier = form.get("code_verifier", "")
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .decode()
            .rstrip("=")
        )
        if challenge != grant["challenge"]:
            return _json(
                400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
            )
        access = secrets.token_urlsafe(24)
        with self.lock:
            self.access_tokens[access] = grant["account"]
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3599,
            "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
            "id_token": "unused.by.cpsync",
        }
        if grant["offline"]:
            answer["refresh_token"] = "1//refresh-" + secrets.token_urlsafe(16)
        return _json(200, answer)

    def userinfo(self, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        token = (authorization or "").removeprefix("Bearer ")
        account = self.access_tokens.get(token)
        if account is None:
            return _json(401, {"error": "invalid_token"})
        return _json(
            200,
            {
                "sub": account.sub,
                "email": account.email,
                "email_verified": account.email_verified,
                "name": account.name,
            },
        )


def _json(status: int, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _answer(self, result: tuple[int, dict[str, str], bytes]) -> None:
            status, headers, body = result
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            routes = {
                "/authorize": lambda: fake.authorize(query),
                "/consent": lambda: fake.consent(query),
                "/userinfo": lambda: fake.userinfo(self.headers.get("Authorization")),
            }
            route = routes.get(parts.path)
            self._answer(route() if route else (404, {}, b""))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            path = urlsplit(self.path).path
            if path == "/revoke":
                # Google answers 200 for a token it knew, 400 for one it did not.
                fake.revoked.append(form.get("token", ""))
                self._answer((200, {}, b""))
                return
            if path != "/token":
                self._answer((404, {}, b""))
                return
            self._answer(fake.token(form, self.headers.get("Authorization")))

    return Handler


@contextmanager
def fake_google(redirect_uri: str) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(redirect_uris={redirect_uri})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
