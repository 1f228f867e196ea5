"""Registers the student tasks on the worker's broker (`cpsync.tasks` imports this).

Kept apart from `cpsync.students.tasks` so that module stays importable on its own:
this one needs `cpsync.tasks`' broker and settings, which exist by the time
`cpsync.tasks` imports it (its last line).
"""

from __future__ import annotations

from taskiq import TaskiqEvents, TaskiqState

from cpsync import tasks as _tasks
from cpsync.students.tasks import StudentsPool, register

pool = StudentsPool(_tasks.settings)
register(_tasks.broker, pool)


async def _close_pool(_state: TaskiqState) -> None:
    await pool.close()


_tasks.broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close_pool)
