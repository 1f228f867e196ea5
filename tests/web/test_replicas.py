"""Reads go to read replicas when there are some; writes always go to the primary.

The "replicas" here are second connections to the same database (what streaming
replication would hand us); the test proves the routing, PostgreSQL does the copying.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event, text

from cpsync.app import create_app
from cpsync.db import Database, open_database
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.web.conftest import create_user, make_client, sign_in


def count_statements(db: Database) -> Counter[str]:
    """How many statements ran on the primary and on each replica."""
    seen: Counter[str] = Counter()

    def listen(name: str, engine: Any) -> None:
        def counted(*_args: Any) -> None:
            seen[name] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", counted)

    listen("primary", db.engine)
    for index, factory in enumerate(db.replicas):
        listen(f"replica{index}", factory.kw["bind"])
    return seen


async def test_read_sessions_take_turns_over_the_replicas(
    database: Database, settings: Settings
) -> None:
    url = settings.resolved_database_url()
    db = await open_database(settings.model_copy(update={"database_replica_urls": f"{url}, {url}"}))
    seen = count_statements(db)
    try:
        for _ in range(4):
            async with db.read_session() as session:
                assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()
    assert seen == Counter({"replica0": 2, "replica1": 2})


async def test_without_replicas_reads_use_the_primary(database: Database) -> None:
    seen = count_statements(database)
    async with database.read_session() as session:
        await session.execute(text("SELECT 1"))
    assert seen == Counter({"primary": 1})


async def test_the_app_reads_from_a_replica_and_writes_to_the_primary(
    database: Database, web_settings: Settings, clock: MutableClock
) -> None:
    url = web_settings.resolved_database_url()
    app = create_app(web_settings.model_copy(update={"database_replica_urls": url}), clock=clock)
    async with app.router.lifespan_context(app), make_client(app) as http:
        seen = count_statements(app.state.cpsync.db)
        assert (await http.get("/api/v1/platforms")).status_code == 200
        assert seen["replica0"] > 0
        read_on_primary = seen["primary"]
        await create_user(app, "ada@example.com")
        await sign_in(http, "ada@example.com")
        assert seen["primary"] > read_on_primary  # the session row is written there
