"""The one rule for calling URLs that users hand us (server-side request forgery).

A member may give cpsync a URL to call on their behalf (a CalDAV collection today). Left
unchecked, that URL lets anyone with an account probe the deployment's own network:
`http://127.0.0.1:6379`, `http://169.254.169.254/latest/meta-data`, a LAN router. So,
outside development, a user-supplied URL must

- use `https://` and carry no `user:password@` part,
- not name this app's own host,
- resolve only to public unicast addresses: never loopback, private, shared (CGNAT),
  link-local, unspecified, multicast, reserved, documentation or cloud-metadata
  addresses, IPv4 or IPv6, including IPv4 hidden inside IPv6 (mapped, 6to4).

`GuardedTransport` enforces this for every request a client makes, each redirect hop
included, and resolves names itself: the connection goes to the very address that was
checked, so a name that "rebinds" to an internal address between a check and the
connection is still refused. Self-hosters whose calendar lives on their LAN turn the
address rule off with `CPSYNC_OUTBOUND_ALLOW_PRIVATE` (which also allows plain http) or
open single networks with `CPSYNC_OUTBOUND_ALLOWED_NETWORKS`; development (the app
served on plain http on this machine) allows everything.

Errors:

    DestinationRefusedError (CpsyncError)   the URL breaks the rule; its message is fixed
                                            and never repeats what any server answered
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from cpsync.errors import CpsyncError
from cpsync.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the name resolves to, as strings.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_EVERYWHERE: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)
# Not public, yet not flagged by `ipaddress` on every Python 3.11 release.
_NEVER_PUBLIC: tuple[IpNetwork, ...] = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF assignments; Oracle Cloud metadata
    ipaddress.ip_network("168.63.129.16/32"),  # Azure's host endpoint (a public address)
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)


class DestinationRefusedError(CpsyncError):
    status_code = 422


# Fixed messages for any user-supplied URL: they say what to change, never what a
# server answered.
_NOT_HTTPS = "The address must start with https://"
_NOT_PUBLIC = (
    "That address points into a private network, which cpsync does not call. "
    "Use the server's public https:// address."
)
_USERINFO = "Put the username and password in their own fields, not in the address."


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What a user-supplied URL may reach. The default is the strict production rule."""

    require_https: bool = True
    allowed_networks: tuple[IpNetwork, ...] = ()  # reachable even though not public
    own_hosts: frozenset[str] = field(default_factory=frozenset)  # this app's host names

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        if settings.plain_http_localhost or settings.outbound_allow_private:
            return cls(require_https=False, allowed_networks=_EVERYWHERE)
        own = urlsplit(settings.public_url).hostname
        return cls(
            allowed_networks=parse_networks(settings.outbound_allowed_networks),
            own_hosts=frozenset({own} if own else ()),
        )

    def allows_address(self, address: IpAddress) -> bool:
        return is_public_address(address) or any(
            address.version == network.version and address in network
            for network in self.allowed_networks
        )


def parse_networks(spec: str) -> tuple[IpNetwork, ...]:
    """`192.168.1.10, 10.0.0.0/8` -> networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(part.strip()) for part in spec.split(",") if part.strip())


def is_public_address(address: IpAddress) -> bool:
    """A global unicast address, judged by the IPv4 address inside when there is one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
    flagged = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )
    never_public = any(
        address.version == network.version and address in network for network in _NEVER_PUBLIC
    )
    return address.is_global and not flagged and not never_public


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class OutboundGuard:
    """Applies one `OutboundPolicy`; `resolver` is injectable so tests can rebind names."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self._resolver = resolver

    def check_url(self, url: str) -> None:
        """What the URL alone tells: scheme, credentials, host. Addresses come later."""
        parts = urlsplit(url)
        allowed_schemes = ("https",) if self.policy.require_https else ("https", "http")
        if parts.scheme.lower() not in allowed_schemes:
            raise DestinationRefusedError(_NOT_HTTPS)
        if "@" in parts.netloc:
            raise DestinationRefusedError(_USERINFO)
        host = (parts.hostname or "").rstrip(".").lower()
        if not host or host in self.policy.own_hosts:
            raise DestinationRefusedError(_NOT_PUBLIC)
        literal = _literal_address(host)
        if literal is not None and not self.policy.allows_address(literal):
            raise DestinationRefusedError(_NOT_PUBLIC)

    async def addresses(self, host: str, port: int) -> list[str]:
        """Where `host` may be reached: every address it resolves to, each checked.

        One refused address refuses the name: a resolver answering "public, private"
        must not get the private one tried when the public one fails to connect.
        """
        literal = _literal_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = list(await self._resolver(host, port))
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        if not found or not all(self.policy.allows_address(_address(a)) for a in found):
            raise DestinationRefusedError(_NOT_PUBLIC)
        return found


def _literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _address(text: str) -> IpAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the guard has just checked.

    httpcore passes the URL's host here and keeps using it for TLS (SNI and the
    certificate check), so only the socket's destination changes.
    """

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in await self._guard.addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # `addresses` never returns an empty list
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefusedError(_NOT_PUBLIC)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with every request and every connection checked."""

    def __init__(self, guard: OutboundGuard) -> None:
        super().__init__()
        self._guard = guard
        # httpx takes no network backend argument: build its pool again with ours.
        # `httpx.Client(transport=...)` also ignores proxy variables, which would
        # otherwise carry the request past the address check.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(guard),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._guard.check_url(str(request.url))  # each redirect hop comes through here
        return await super().handle_async_request(request)


def guarded_transport(settings: Settings, resolver: Resolver = system_resolver) -> GuardedTransport:
    """The transport for any client that calls user-supplied URLs."""
    return GuardedTransport(OutboundGuard(OutboundPolicy.from_settings(settings), resolver))
