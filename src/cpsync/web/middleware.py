"""ASGI middleware: request size caps, rate limits, security headers, cookies.

Pure ASGI (no BaseHTTPMiddleware), outermost first as `app.py` stacks them (the client's
address behind trusted proxies is uvicorn's ProxyHeadersMiddleware):

    SecurityHeaders → ProxyHeaders → RequestLimits → RateLimit → Timeout → PendingCookies
    → HeadAsGet → app
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cpsync.web.ratelimit import FixedWindowLimiter

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
COOKIES_STATE_KEY = "cpsync_cookies"


def parse_trusted_proxies(spec: str) -> list[IPNetwork]:
    """`CPSYNC_TRUSTED_PROXIES`: comma-separated addresses or CIDRs."""
    networks: list[IPNetwork] = []
    for entry in (part.strip() for part in spec.split(",")):
        if entry:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return networks


def trusted_hosts(spec: str) -> list[str]:
    """`CPSYNC_TRUSTED_PROXIES` for uvicorn's ProxyHeadersMiddleware, which takes the
    rightmost X-Forwarded-For hop that is not a trusted proxy (ports and bracketed IPv6
    included) as the client. Parsed here first so a typo fails at start-up."""
    return [str(network) for network in parse_trusted_proxies(spec)]


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


async def _send_plain(
    send: Send, status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    """414 for an oversized request line, 431 for oversized headers, 413 for oversized bodies.

    The whole body (declared or chunked) is read and measured here, before the app sees
    the request: otherwise a check that answers without reading it (CSRF) would hide
    the 413 behind its own status.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_header_bytes: int, max_request_line_bytes: int
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_header = max_header_bytes
        self.max_request_line = max_request_line_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if request_line_bytes(scope) > self.max_request_line:
            await _send_plain(send, 414, "The address is too long.")
            return
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > self.max_header or len(scope["headers"]) > 100:
            await _send_plain(send, 431, "Request headers too large.")
            return
        declared = _headers(scope, b"content-length")
        if declared and (not declared[0].isdigit() or int(declared[0]) > self.max_body):
            await _send_plain(send, 413, "Request body too large.")
            return
        buffered = await _read_body(receive, self.max_body)
        if buffered is None:
            await _send_plain(send, 413, "Request body too large.")
            return
        await self.app(scope, buffered, send)


def request_line_bytes(scope: Scope) -> int:
    """Length of `METHOD /path?query HTTP/1.1` as the client sent it."""
    target = len(scope.get("raw_path") or scope["path"].encode())
    query: bytes = scope.get("query_string", b"")
    if query:
        target += 1 + len(query)
    return len(scope["method"]) + 1 + target + len(" HTTP/") + len(scope.get("http_version", ""))


async def _read_body(receive: Receive, limit: int) -> Receive | None:
    """The body read up to `limit` bytes, replayed as one message; None when it is larger."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            first: Message = message  # the client left; let the app see it
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    pending = [first]

    async def replay() -> Message:
        # After the body, the server's own receive reports the disconnect.
        return pending.pop() if pending else await receive()

    return replay


# Paths where a stricter budget applies to state-changing requests: credential guessing.
AUTH_PATHS = ("/signin", "/signup", "/auth/google", "/account")
UNLIMITED_PREFIXES = ("/static/", "/healthz", "/readyz")


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: FixedWindowLimiter,
        *,
        window_seconds: int,
        requests: int,
        auth_requests: int,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.window = window_seconds
        self.requests = requests
        self.auth_requests = auth_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        # The peer, or behind a trusted proxy the client it names (ProxyHeadersMiddleware).
        client = scope["client"][0] if scope.get("client") else "unknown"
        for key, limit in self._budgets(scope, client):
            decision = await self.limiter.hit(key, limit, self.window)
            if not decision.allowed:
                retry = str(decision.retry_after).encode()
                await _send_plain(
                    send, 429, "Too many requests; slow down.", [(b"retry-after", retry)]
                )
                return
        await self.app(scope, receive, send)

    def _budgets(self, scope: Scope, client: str) -> list[tuple[str, int]]:
        budgets = [(f"all:{client}", self.requests)]
        path: str = scope["path"]
        if path.startswith(AUTH_PATHS) and (scope["method"] == "POST" or path.startswith("/auth/")):
            budgets.append((f"auth:{client}", self.auth_requests))
        return budgets


class TimeoutMiddleware:
    """503 when a request takes longer than the budget and nothing was sent yet."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        with anyio.move_on_after(self.seconds) as scope_timer:
            await self.app(scope, receive, tracking_send)
        if scope_timer.cancelled_caught and not started:
            await _send_plain(send, 503, "The request took too long.")


class HeadAsGetMiddleware:
    """HEAD answers like GET, headers and all, without the body.

    FastAPI routes declared with GET do not answer HEAD (405), yet calendar clients
    probe feeds with it and link checkers probe pages. The length stays the GET body's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


class PendingCookiesMiddleware:
    """Adds the cookies that dependencies queued in `request.state` to any response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookies: list[str] = scope.get("state", {}).get(COOKIES_STATE_KEY, [])
                if cookies:
                    headers = list(message.get("headers", []))
                    headers += [(b"set-cookie", cookie.encode("latin-1")) for cookie in cookies]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_cookies)


def cookie_header(
    name: str, value: str, *, max_age: int | None, secure: bool, path: str = "/"
) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Secure unless plain-HTTP localhost."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = path
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = max_age
    return morsel.OutputString()


def queue_cookie(state: Any, header: str) -> None:
    """Queue a Set-Cookie for `PendingCookiesMiddleware` (state: `request.state`)."""
    pending: list[str] = getattr(state, COOKIES_STATE_KEY, None) or []
    pending.append(header)
    setattr(state, COOKIES_STATE_KEY, pending)


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool, docs_csp: str) -> None:
        self.app = app
        self.docs_csp = docs_csp
        self.fixed: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            self.fixed.append(
                (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (self.docs_csp if scope["path"] in ("/docs", "/docs/") else CSP).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                headers += [(k, v) for k, v in self.fixed if k not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", csp))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
