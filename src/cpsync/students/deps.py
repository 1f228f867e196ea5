"""What student routes depend on: the process's runtime, the coach, the services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from cpsync.accounts.deps import CurrentUser
from cpsync.accounts.models import User
from cpsync.students.runtime import StudentsRuntime
from cpsync.students.service import StudentNotFoundError, StudentService, coach_scope
from cpsync.web.deps import JobsDep, ResourcesDep, SessionDep


def get_runtime(resources: ResourcesDep, jobs: JobsDep) -> StudentsRuntime:
    """Student tracking on the process's resources; background work on the request's jobs."""
    return StudentsRuntime(resources, jobs)


RuntimeDep = Annotated[StudentsRuntime, Depends(get_runtime)]


def get_coach(user: CurrentUser) -> User:
    coach_scope(user)  # members are turned away
    return user


CoachUser = Annotated[User, Depends(get_coach)]


def get_student_service(session: SessionDep, runtime: RuntimeDep) -> StudentService:
    return StudentService(session, runtime.checker(), runtime.clock)


StudentServiceDep = Annotated[StudentService, Depends(get_student_service)]

MAX_ID = 2_147_483_647


def student_id_in_path(
    student_id: Annotated[str, Path(description="The student's id", examples=["42"])],
) -> int:
    """Ids are database integers: `/students/abc` or an out-of-range id is simply not
    found (404), like an id nobody has, never a validation error."""
    if not (student_id.isascii() and student_id.isdigit()) or not 1 <= int(student_id) <= MAX_ID:
        raise StudentNotFoundError
    return int(student_id)


StudentId = Annotated[int, Depends(student_id_in_path)]
