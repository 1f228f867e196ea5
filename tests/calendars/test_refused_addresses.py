"""Server-side request forgery through the CalDAV form and at sync time (issue 8, items 6, 16).

The app runs as in production (served over https, no private hosts allowed): every way the
attack pass aimed the connect form at an internal address is refused with a fixed
message, and nothing reaches the local servers. At sync time, a link whose name now
resolves to a private address is refused too, and the run says why.
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from cpsync.accounts.crypto import generate_key_spec
from cpsync.app import create_app
from cpsync.cache import MemoryCache
from cpsync.calendars.models import RunStatus
from cpsync.calendars.service import CalendarLinkError, CalendarOptions
from cpsync.db import Database, open_database
from cpsync.http import HttpClient
from cpsync.locks import MemoryLocks
from cpsync.outbound import GuardedTransport, OutboundGuard, OutboundPolicy
from cpsync.resources import user_http_client
from cpsync.settings import Settings
from tests.calendars.conftest import read_collection
from tests.calendars.service_support import (
    NOW,
    ServiceKit,
    add_contests,
    add_user,
    change_contest,
    google_config,
    keyring,
    link_row,
    runs_of,
)
from tests.test_outbound import FakeDns
from tests.web.conftest import WebClient, cheap_argon2, create_user, csrf_of, sign_in

__all__ = ["cheap_argon2"]

PUBLIC_URL = "https://cpsync.example"
# What the probed internal service says: it must never appear in an answer.
INTERNAL_ANSWER = b"INTERNAL-SECRET redis_version:7.0"


class InternalService:
    """An internal HTTP service: answers any method with words that must not leak."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        seen = self.methods

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def __getattr__(self, name: str) -> Callable[[], None]:
                if not name.startswith("do_"):
                    raise AttributeError(name)
                return self._answer

            def _answer(self) -> None:
                seen.append(self.command)
                self.send_response(418)
                self.send_header("Content-Length", str(len(INTERNAL_ANSWER)))
                self.end_headers()
                self.wfile.write(INTERNAL_ANSWER)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> InternalService:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def internal() -> Iterator[InternalService]:
    with InternalService() as service:
        yield service


def _production(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cpsync.db'}",
        public_url=PUBLIC_URL,
        secret_key="s" * 16 + uuid.uuid4().hex,
        encryption_keys=generate_key_spec("k1"),
        refresh_interval_minutes=0,
        http_max_retries=0,
        http_backoff_seconds=0.01,
        **values,
    )


async def _signed_in(settings: Settings) -> AsyncIterator[WebClient]:
    application = create_app(settings, clock=lambda: NOW)
    async with application.router.lifespan_context(application):
        await create_user(application, "ann@example.org")
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 40000))
        async with WebClient(transport=transport, base_url="https://testserver") as http:
            await sign_in(http, "ann@example.org")
            yield http


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[WebClient]:
    async for http in _signed_in(_production(tmp_path)):
        yield http


async def _connect(http: WebClient, url: str) -> httpx.Response:
    token = csrf_of(await http.get("/calendar/sync"))
    form = {"url": url, "username": "ann", "password": "pw", "csrf_token": token}
    return await http.post("/calendar/sync/caldav", data=form)


def _attack_forms(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://2130706433:{port}/",
        f"http://[::1]:{port}/",
        f"http://localhost:{port}/",
        f"http://evil.example@127.0.0.1:{port}/",
        f"https://127.0.0.1:{port}/",
        f"https://0.0.0.0:{port}/",
        f"https://2130706433:{port}/",
        f"https://[::1]:{port}/",
        f"https://[::ffff:127.0.0.1]:{port}/",
        f"https://localhost:{port}/",
        "https://127.0.0.1:6379/",  # Redis
        "https://169.254.169.254/latest/meta-data/",
        f"{PUBLIC_URL}/calendar/sync",  # the app itself
    ]


async def test_the_connect_form_refuses_every_internal_address(
    production: WebClient, internal: InternalService
) -> None:
    for url in _attack_forms(internal.port):
        answer = await _connect(production, url)
        assert answer.status_code == 422, url
        assert "field-error" in answer.text
        assert "INTERNAL-SECRET" not in answer.text
        assert "418" not in answer.text
    assert internal.methods == []
    page = await production.get("/calendar/sync")
    assert "No calendar connected yet" in page.text


async def test_a_private_calendar_allowed_by_the_operator_never_echoes_its_answer(
    tmp_path: Path, internal: InternalService
) -> None:
    """A self-hoster allows private hosts; a failing server's words still stay out."""
    settings = _production(tmp_path, outbound_allow_private=True)
    async for http in _signed_in(settings):
        answer = await _connect(http, f"{internal.base_url}/")
        assert answer.status_code == 422
        assert "Could not connect to that calendar" in answer.text
        assert "INTERNAL-SECRET" not in answer.text
        assert "418" not in answer.text
    assert internal.methods[:1] == ["REPORT"]


async def test_the_self_hosters_radicale_connects_when_private_hosts_are_allowed(
    tmp_path: Path, radicale_url: str
) -> None:
    settings = _production(tmp_path, outbound_allowed_networks="127.0.0.1/32")
    url = f"{radicale_url.replace('http://', 'https://')}/ann/contests/"
    async for http in _signed_in(settings):
        # Only these networks are opened: https is still required.
        refused = await _connect(http, f"{radicale_url}/ann/contests/")
        assert "must start with https://" in refused.text
        assert (await _connect(http, url)).status_code == 422  # Radicale speaks no TLS
    (tmp_path / "lan").mkdir()
    lan = _production(tmp_path / "lan", outbound_allow_private=True)
    async for http in _signed_in(lan):
        assert (await _connect(http, f"{radicale_url}/ann/contests/")).status_code == 303


# -- at sync time: a stored link whose name moved to a private address -------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(_production(tmp_path))
    yield database
    await database.dispose()


async def test_a_sync_refuses_a_link_whose_name_now_resolves_to_a_private_address(
    db: Database, radicale_url: str
) -> None:
    """The name pointed at an allowed address when the link was made; it now points into
    the private network. The run fails with the fixed reason and writes nothing."""
    port = radicale_url.rsplit(":", 1)[1]
    dns = FakeDns(calendar_test=["127.0.0.1"])
    policy = OutboundPolicy(
        require_https=False, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),)
    )
    settings = Settings(_env_file=None, http_min_interval_seconds=0)  # type: ignore[call-arg]
    transport = GuardedTransport(OutboundGuard(policy, dns))
    async with HttpClient(settings, transport=transport) as http:
        options = CalendarOptions(
            google=google_config("https://unused.test", "https://unused.test")
        )
        service = ServiceKit(db, http, keyring(), MemoryLocks(), MemoryCache(), options).service()
        user_id = await add_user(db, "ann@example.org")
        await add_contests(db)
        url = f"http://calendar.test:{port}/ann/contests-{uuid.uuid4().hex[:8]}/"
        link_id = await service.connect_caldav(user_id, url, "ann", "pw")
        await service.sync_user(user_id)
        before = await read_collection(http, _sink(service, await link_row(db, link_id)))
        assert len(before) == 5

        dns.names["calendar.test"] = ["10.20.30.40"]  # rebinding
        await change_contest(db, "codeforces", "2050", name="Moved round")
        async with db.session() as session, session.begin():  # what "Sync now" records
            job_id = service.add_sync_request(session, user_id).id
        await service.sync_user(user_id, check_remote=True)

        last = (await runs_of(db, link_id))[-1]
        assert last.status == RunStatus.FAILED
        assert "private network" in last.error
        job = await service.request_status(user_id, job_id)
        assert job.state == "failed"
        dns.names["calendar.test"] = ["127.0.0.1"]
        after = await read_collection(http, _sink(service, await link_row(db, link_id)))
        assert after == before  # nothing was written while the name pointed inside

        dns.names["calendar.test"] = ["169.254.169.254"]
        other = url.replace("contests", "other")
        with pytest.raises(CalendarLinkError, match="private network"):
            await service.connect_caldav(user_id, other, "ann", "pw")


def _sink(service: object, link: object) -> object:
    return service._caldav_sink(link)  # type: ignore[attr-defined]


def test_the_calendar_client_is_guarded_by_the_settings() -> None:
    client = user_http_client(Settings(_env_file=None, public_url=PUBLIC_URL))  # type: ignore[call-arg]
    assert isinstance(client._client._transport, GuardedTransport)
