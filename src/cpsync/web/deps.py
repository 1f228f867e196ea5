"""The kernel's route dependencies, as `Annotated` aliases: the app context and sessions.

`SessionDep` commits when the route function returns (before the response is sent), so a
route that raises writes nothing. The tasks a route enqueues on `JobsDep` are kicked after
that commit, and dropped when the route raised. Who the visitor is lives in `cpsync.accounts.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.queue import JobQueue
from cpsync.resources import Resources
from cpsync.web.context import AppContext


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.cpsync
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_resources(context: ContextDep) -> Resources:
    return context.resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_jobs(resources: ResourcesDep) -> AsyncIterator[JobQueue]:
    """The request's job list: kicked once the route (and its commit) succeeded."""
    jobs = JobQueue(resources.broker)
    try:
        yield jobs
    except BaseException:
        jobs.discard()
        raise
    await jobs.flush()


JobsDep = Annotated[JobQueue, Depends(get_jobs, scope="function")]


async def get_session(context: ContextDep, jobs: JobsDep) -> AsyncIterator[AsyncSession]:
    # Depends on the job list so the list is flushed after this commit, not before.
    async with context.db.session() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(context: ContextDep, session: SessionDep) -> AsyncIterator[AsyncSession]:
    """A replica's session when there are replicas; otherwise the request's own session.

    Never a second session on the primary: it would hold two pool connections per
    request, and under load every request would wait for a connection held by another
    (seen at 16 concurrent home-page requests). Replicas have pools of their own."""
    if not context.db.replicas:
        yield session
        return
    async with context.db.read_session() as replica:
        yield replica


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
