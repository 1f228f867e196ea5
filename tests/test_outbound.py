"""The outbound rule for user-supplied URLs, through the real client against local servers.

Names resolve through an injected resolver (falling back to the system's for `localhost`
and numeric forms such as `2130706433`), so a test can make a name point anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from cpsync.http import HttpClient
from cpsync.outbound import (
    DestinationRefusedError,
    GuardedTransport,
    OutboundGuard,
    OutboundPolicy,
    is_public_address,
    system_resolver,
)
from cpsync.settings import Settings
from tests.replay import ReplayServer, Reply, replay_server


class FakeDns:
    """Names the test controls; anything else goes to the system resolver."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {name.replace("_", "."): addresses for name, addresses in names.items()}

    async def __call__(self, host: str, port: int) -> list[str]:
        if host in self.names:
            return self.names[host]
        return await system_resolver(host, port)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with replay_server() as replay:
        replay.routes[("GET", "/x")] = [Reply(200, b"reached")]
        yield replay


def client(policy: OutboundPolicy, dns: FakeDns) -> HttpClient:
    settings = Settings(_env_file=None, http_max_retries=0)  # type: ignore[call-arg]
    return HttpClient(settings, transport=GuardedTransport(OutboundGuard(policy, dns)))


PRODUCTION = OutboundPolicy(own_hosts=frozenset({"cpsync.example"}))
LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.10",
        "100.64.0.1",  # shared address space (CGNAT)
        "100.100.100.200",  # Alibaba Cloud metadata
        "169.254.169.254",  # AWS, GCP, Azure metadata
        "168.63.129.16",  # Azure host endpoint
        "192.0.0.192",  # Oracle Cloud metadata
        "192.0.2.1",  # documentation
        "198.18.0.1",  # benchmarking
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::"]
)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def _forms(port: int) -> list[str]:
    """The attack pass's forms, each aimed at the local server."""
    return [
        f"http://127.0.0.1:{port}/x",
        f"http://0.0.0.0:{port}/x",
        f"http://2130706433:{port}/x",
        f"http://[::1]:{port}/x",
        f"http://localhost:{port}/x",
        f"http://evil.example@127.0.0.1:{port}/x",
        f"https://127.0.0.1:{port}/x",
        f"https://0.0.0.0:{port}/x",
        f"https://2130706433:{port}/x",
        f"https://0x7f000001:{port}/x",
        f"https://[::1]:{port}/x",
        f"https://[::ffff:127.0.0.1]:{port}/x",
        f"https://localhost:{port}/x",
        f"https://evil.example@127.0.0.1:{port}/x",
        f"https://rebinding.test:{port}/x",
        "https://127.0.0.1:6379/",  # Redis
        "https://169.254.169.254/latest/meta-data/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://cpsync.example/calendar/sync",  # the app itself
        "https://[fd00:ec2::254]/latest/meta-data/",
    ]


async def test_every_internal_form_is_refused_before_any_connection(
    server: ReplayServer,
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    dns = FakeDns(rebinding_test=["127.0.0.1"], metadata_google_internal=["169.254.169.254"])
    async with client(PRODUCTION, dns) as http:
        for url in _forms(port):
            with pytest.raises(DestinationRefusedError) as refused:
                await http.send("GET", url)
            assert "reached" not in refused.value.message, url
    assert server.requests == []


async def test_a_name_resolving_to_both_public_and_private_is_refused(
    server: ReplayServer,
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    dns = FakeDns(mixed_test=["8.8.8.8", "127.0.0.1"])
    policy = OutboundPolicy(require_https=False)
    async with client(policy, dns) as http:
        with pytest.raises(DestinationRefusedError):
            await http.send("GET", f"http://mixed.test:{port}/x")
    assert server.requests == []


async def test_the_connection_goes_to_the_address_that_was_checked(server: ReplayServer) -> None:
    """`calendar.test` exists only in the injected resolver: reaching the server proves the
    socket went to the checked address, while the request still names the host."""
    port = int(server.base_url.rsplit(":", 1)[1])
    dns = FakeDns(calendar_test=["127.0.0.1"])
    policy = OutboundPolicy(require_https=False, allowed_networks=LOOPBACK_ONLY)
    async with client(policy, dns) as http:
        response = await http.send("GET", f"http://calendar.test:{port}/x")
        assert (response.status, response.body) == (200, b"reached")
        dns.names["calendar.test"] = ["10.1.2.3"]  # the name rebinds
        with pytest.raises(DestinationRefusedError):
            await http.send("GET", f"http://calendar.test:{port}/x")
    assert server.requests[0][2]["Host"] == f"calendar.test:{port}"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://[::1]:{port}/x",
        "http://127.0.0.2:{port}/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://internal.test:{port}/x",
        "file:///etc/passwd",
    ],
)
async def test_redirects_are_followed_only_to_allowed_addresses(
    server: ReplayServer, target: str
) -> None:
    """The first hop is allowed; the one it redirects to is checked again, and refused."""
    port = int(server.base_url.rsplit(":", 1)[1])
    server.routes[("GET", "/go")] = [Reply(302, headers={"Location": target.format(port=port)})]
    dns = FakeDns(internal_test=["192.168.0.7"])
    policy = OutboundPolicy(require_https=False, allowed_networks=LOOPBACK_ONLY)
    async with client(policy, dns) as http:
        with pytest.raises(DestinationRefusedError):
            await http.send("GET", f"{server.base_url}/go")
    assert [target for _, target, _, _ in server.requests] == ["/go"]


async def test_a_redirect_to_an_allowed_address_is_followed(server: ReplayServer) -> None:
    server.routes[("GET", "/go")] = [Reply(302, headers={"Location": "/x"})]
    policy = OutboundPolicy(require_https=False, allowed_networks=LOOPBACK_ONLY)
    async with client(policy, FakeDns()) as http:
        response = await http.send("GET", f"{server.base_url}/go")
    assert response.body == b"reached"


async def test_an_unknown_name_is_a_network_error_not_a_refusal() -> None:
    async def no_such_name(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    settings = Settings(_env_file=None, http_max_retries=0)  # type: ignore[call-arg]
    transport = GuardedTransport(OutboundGuard(PRODUCTION, no_such_name))
    async with HttpClient(settings, transport=transport) as http:
        with pytest.raises(Exception, match="cannot reach") as failed:
            await http.send("GET", "https://calendar.invalid/dav/")
    assert not isinstance(failed.value, DestinationRefusedError)


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_development_allows_everything_production_only_public_https() -> None:
    development = OutboundPolicy.from_settings(_settings(public_url="http://127.0.0.1:8000"))
    assert not development.require_https
    assert development.allows_address(ipaddress.ip_address("127.0.0.1"))

    production = OutboundPolicy.from_settings(_settings(public_url="https://cpsync.example"))
    assert production.require_https
    assert production.own_hosts == {"cpsync.example"}
    assert not production.allows_address(ipaddress.ip_address("192.168.1.10"))

    lan = _settings(public_url="https://cpsync.example", outbound_allow_private=True)
    assert OutboundPolicy.from_settings(lan).allows_address(ipaddress.ip_address("192.168.1.10"))

    one_host = _settings(
        public_url="https://cpsync.example", outbound_allowed_networks="192.168.1.10"
    )
    policy = OutboundPolicy.from_settings(one_host)
    assert policy.allows_address(ipaddress.ip_address("192.168.1.10"))
    assert not policy.allows_address(ipaddress.ip_address("192.168.1.11"))
    assert policy.require_https


def test_a_bad_network_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not an IP network"):
        _settings(outbound_allowed_networks="192.168.1.0/33")
