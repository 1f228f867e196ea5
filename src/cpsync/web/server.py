"""The HTTP protocol `cpsync serve` hands uvicorn: its h11 protocol, guarded against
clients that hold connections without sending requests.

Left alone, uvicorn waits forever for a connection's request headers and counts idle
connections against `limit_concurrency`, so a couple of hundred connections that send
nothing, or trickle a header line now and then, get everyone else a 503. Here:

- a connection must deliver complete request headers within `header_timeout` seconds of
  connecting, or of the end of its previous response, and then the request's body within
  `body_timeout` seconds, else it is closed;
- a peer address may hold at most `max_per_client` connections; one more is closed at
  once. The cap is per TCP peer: a trusted reverse proxy (`CPSYNC_TRUSTED_PROXIES`) is
  exempt, since all its clients share its address and it caps each of them itself
  (see deploy/nginx.conf);
- `limit_concurrency` counts requests in flight only; beyond it a request gets 503.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from cpsync.settings import Settings
from cpsync.web.middleware import IPNetwork, parse_trusted_proxies

log = logging.getLogger(__name__)


@dataclass
class ConnectionGuard:
    """What one server's connections share: limits, connections per peer, requests in flight."""

    header_timeout: float
    body_timeout: float
    max_per_client: int
    trusted_proxies: Sequence[IPNetwork] = ()
    open_by_peer: Counter[str] = field(default_factory=Counter)
    requests_in_flight: int = 0
    # Peers told about once per spell at the cap, so a flood writes one line, not thousands.
    reported: set[str] = field(default_factory=set)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionGuard:
        return cls(
            header_timeout=settings.server_header_timeout_seconds,
            body_timeout=settings.server_body_timeout_seconds,
            max_per_client=settings.server_max_connections_per_client,
            trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        )

    def admit(self, peer: str) -> bool:
        """Count one more connection from `peer`, unless it already holds its share."""
        if self.open_by_peer[peer] >= self.max_per_client and not self._is_proxy(peer):
            if peer not in self.reported:
                self.reported.add(peer)
                log.warning("server.connections.capped peer=%s cap=%d", peer, self.max_per_client)
            return False
        self.open_by_peer[peer] += 1
        return True

    def release(self, peer: str) -> None:
        self.open_by_peer[peer] -= 1
        if self.open_by_peer[peer] <= 0:
            del self.open_by_peer[peer]
        self.reported.discard(peer)  # below the cap again

    def _is_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the guard's limits; build one with `guarded_protocol`."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_for: type[h11.IDLE] | type[h11.SEND_BODY] | None = None
        self._counted_peer: str | None = None
        # uvicorn's own check counts open connections too, idle ones included.
        self.limit_concurrency = None
        self._requests_limit = config.limit_concurrency
        self._inner_app = self.app
        self.app = self._app_within_limit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else None
        if peer is not None:
            if not self.guard.admit(peer):
                transport.close()
                return
            self._counted_peer = peer
        self._watch_client()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        if self._counted_peer is not None:
            self.guard.release(self._counted_peer)
            self._counted_peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_client()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_client()

    async def _app_within_limit(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        # Counted here, not from the server's task set: requests arriving together all
        # have their tasks before any runs, and would all see themselves over the limit.
        guard = self.guard
        if self._requests_limit is not None and guard.requests_in_flight >= self._requests_limit:
            log.warning("server.requests.over_limit limit=%d", self._requests_limit)
            await service_unavailable(scope, receive, send)
            return
        guard.requests_in_flight += 1
        try:
            await self._inner_app(scope, receive, send)
        finally:
            guard.requests_in_flight -= 1

    def _watch_client(self) -> None:
        """Keep a deadline running exactly while the request's headers or body are due.

        h11 reports the client IDLE from the connection's start, and again once a response
        has gone out and the next cycle began, until a request's headers are complete;
        then SEND_BODY until its body is.
        """
        state = self.conn.their_state
        if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
            self._stop_deadline()
        elif state is not self._deadline_for:
            self._stop_deadline()
            timeout = self.guard.header_timeout if state is h11.IDLE else self.guard.body_timeout
            self._deadline = self.loop.call_later(timeout, self._overdue)
            self._deadline_for = state

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._deadline_for = None

    def _overdue(self) -> None:
        log.debug(
            "server.request.timeout peer=%s waiting=%s", self._counted_peer, self._deadline_for
        )
        self._deadline = None
        self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's `http=`, its connections sharing `guard`."""

    class Protocol(GuardedH11Protocol):
        pass

    Protocol.guard = guard
    return Protocol
