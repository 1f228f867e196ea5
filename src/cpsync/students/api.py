"""`/api/v1/students...` (JSON, same rules as the pages) and the external `POST /cron/sync`."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cpsync.accounts.deps import CsrfProtected
from cpsync.students.dashboard import DashboardService, parse_period
from cpsync.students.deps import CoachUser, RuntimeDep, StudentId, StudentServiceDep
from cpsync.students.schemas import StudentInput, StudentList, StudentOut, SyncStarted
from cpsync.students.service import (
    StudentFormError,
    coach_scope,
    students_page,
    visible_student,
)
from cpsync.students.stats import CONTEST_PERIODS, PROBLEM_PERIODS
from cpsync.web.deps import ReadSessionDep, SessionDep

router = APIRouter(prefix="/api/v1/students", tags=["students"], dependencies=[CsrfProtected])


@router.get("", response_model=StudentList, summary="Your students (admins: everyone's)")
async def list_students(
    coach: CoachUser,
    session: ReadSessionDep,
    q: str = "",
    sort: str = "name",
    order: str = "asc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StudentList:
    found = await students_page(
        session,
        coach,
        query=q,
        sort=sort,
        descending=order == "desc",
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    students = [StudentOut.of(s) for s in found.students]
    return StudentList(students=students, total=found.total, page=page, per_page=per_page)


@router.post("", response_model=StudentOut, status_code=201, summary="Add a student")
async def create_student(
    body: StudentInput, coach: CoachUser, service: StudentServiceDep, runtime: RuntimeDep
) -> StudentOut:
    try:
        saved = await service.add(coach, body)
    except StudentFormError as error:
        raise as_validation_error(error) from error
    await runtime.start_sync(coach_id=coach.id, student_ids=[saved.student.id], trigger="added")
    return StudentOut.of(saved.student)


@router.get("/{student_id}", response_model=StudentOut)
async def get_student(
    student_id: StudentId, coach: CoachUser, service: StudentServiceDep
) -> StudentOut:
    return StudentOut.of(await service.get(coach, student_id))


@router.put("/{student_id}", response_model=StudentOut, summary="Replace a student's fields")
async def put_student(
    student_id: StudentId,
    body: StudentInput,
    coach: CoachUser,
    service: StudentServiceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> StudentOut:
    try:
        saved = await service.update(coach, student_id, body)
    except StudentFormError as error:
        raise as_validation_error(error) from error
    await session.commit()
    await runtime.forget_stats([student_id])
    if saved.needs_sync:
        await runtime.start_sync(
            coach_id=saved.student.coach_id, student_ids=[student_id], trigger="edited"
        )
    return StudentOut.of(saved.student)


@router.delete("/{student_id}", status_code=204)
async def remove_student(
    student_id: StudentId, coach: CoachUser, service: StudentServiceDep
) -> Response:
    await service.delete(coach, student_id)
    return Response(status_code=204)


@router.get("/{student_id}/contests", summary="Contest history (days: 30, 90, 365 or all)")
async def student_contests(
    student_id: StudentId,
    coach: CoachUser,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    days: str = "all",
) -> dict[str, Any]:
    student = await visible_student(session, coach, student_id)
    dashboard = DashboardService(session, runtime.cache, runtime.clock)
    return await dashboard.contests(student, parse_period(days, CONTEST_PERIODS))


@router.get("/{student_id}/problems", summary="Problem statistics (days: 7, 30, 90 or all)")
async def student_problems(
    student_id: StudentId,
    coach: CoachUser,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    days: str = "all",
) -> dict[str, Any]:
    student = await visible_student(session, coach, student_id)
    dashboard = DashboardService(session, runtime.cache, runtime.clock)
    return await dashboard.problems(student, parse_period(days, PROBLEM_PERIODS))


@router.post("/{student_id}/sync", response_model=SyncStarted, status_code=202)
async def sync_one(
    student_id: StudentId, coach: CoachUser, service: StudentServiceDep, runtime: RuntimeDep
) -> SyncStarted:
    student = await service.get(coach, student_id)
    started = await runtime.start_sync(coach_id=student.coach_id, student_ids=[student.id])
    return SyncStarted(status="started" if started else "running", students=1)


@router.post("/sync", response_model=SyncStarted, status_code=202, summary="Sync all")
async def sync_everyone(coach: CoachUser, runtime: RuntimeDep) -> SyncStarted:
    started = await runtime.start_sync(coach_id=coach_scope(coach), trigger="sync_all")
    return SyncStarted(status="started" if started else "running", students=-1)


def as_validation_error(error: StudentFormError) -> RequestValidationError:
    """Form errors (unknown handle, duplicate) in the API's one 422 shape."""
    return RequestValidationError(
        [
            {"loc": ("body", field), "msg": message, "type": "value_error"}
            for field, message in error.errors.items()
        ]
    )


def cron_router(secret: str) -> APIRouter:
    """`POST /cron/sync`, only mounted when a secret is configured."""
    cron = APIRouter(tags=["students"])
    expected = secret.encode()

    @cron.post("/cron/sync", status_code=202, summary="External trigger: sync every student")
    async def cron_sync(
        runtime: RuntimeDep,
        x_cron_secret: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        given = (x_cron_secret or "").encode()
        # Constant time, and a missing header compares like a wrong one.
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"detail": "wrong or missing X-Cron-Secret"}, status_code=401)
        started = await runtime.start_sync(coach_id=None, trigger="cron")
        return JSONResponse({"status": "started" if started else "running"}, status_code=202)

    return cron
