"""A local HTTP server that stands in for the contest sites.

Routes are keyed by method and request target (path plus query), so a platform whose
request path drifts from the real one gets a 404 here, as it would in production.
Each route answers with a recorded body, an injected fault, or a delay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cpsync.platforms.registry import PLATFORMS


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Cut the connection after sending headers and this many body bytes.
    truncate_at: int | None = None

    @classmethod
    def file(cls, path: Path, content_type: str = "application/json") -> Reply:
        return cls(body=path.read_bytes(), headers={"Content-Type": content_type})


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def platform_target(self, platform: str) -> tuple[str, str]:
        request = PLATFORMS[platform].request(self.base_url)
        return request.method, request.url.removeprefix(self.base_url)

    def serve(self, platform: str, *replies: Reply) -> None:
        """Answer the platform's contest-list request with these replies; the last repeats."""
        with self._lock:
            self.routes[self.platform_target(platform)] = list(replies)

    def hits(self, platform: str) -> int:
        method, target = self.platform_target(platform)
        return sum(1 for m, t, _, _ in self.requests if (m, t) == (method, target))

    def base_url_env(self) -> dict[str, str]:
        return {f"{name}_base_url": self.base_url for name in PLATFORMS}

    def _next_reply(self, method: str, target: str) -> Reply:
        with self._lock:
            queue = self.routes.get((method, target))
            if not queue:
                return Reply(404, b'{"error": "no such route"}')
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append((self.command, self.path, dict(self.headers), body))
                reply = server._next_reply(self.command, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.truncate_at is not None:
                    self.wfile.write(reply.body[: reply.truncate_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                try:
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = _answer
            do_POST = _answer

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def replay_server() -> Iterator[ReplayServer]:
    server = ReplayServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
