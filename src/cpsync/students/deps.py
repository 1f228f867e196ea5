"""What student routes depend on: the process's runtime, the coach, the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from cpsync.accounts.models import User
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.service import StudentService, coach_scope
from cpsync.web.deps import ContextDep, CurrentUser, SessionDep


def get_runtime(request: Request, context: ContextDep) -> StudentsRuntime:
    """One runtime per app, made on first use from the app's shared resources."""
    runtime: StudentsRuntime | None = getattr(request.app.state, "students", None)
    if runtime is None:
        runtime = StudentsRuntime(
            context.settings, context.db, context.http, context.cache, context.clock
        )
        request.app.state.students = runtime
    return runtime


RuntimeDep = Annotated[StudentsRuntime, Depends(get_runtime)]


def get_coach(user: CurrentUser) -> User:
    coach_scope(user)  # members are turned away
    return user


CoachUser = Annotated[User, Depends(get_coach)]


def get_student_service(session: SessionDep, runtime: RuntimeDep) -> StudentService:
    return StudentService(session, runtime.checker(), runtime.clock)


StudentServiceDep = Annotated[StudentService, Depends(get_student_service)]

# Ids are database integers: anything outside is simply not found (422), never a crash.
StudentId = Annotated[int, Path(ge=1, le=2_147_483_647)]
