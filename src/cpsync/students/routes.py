"""Student pages: table, add/edit/delete, profile, CSV, settings. Thin: parse, call, render.

`build_router(settings)` gathers these pages, the JSON API and, only when a cron
secret is configured, `POST /cron/sync`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from cpsync.accounts.deps import CsrfProtected
from cpsync.settings import Settings
from cpsync.students import api
from cpsync.students.config import StudentsConfig
from cpsync.students.csv_io import decode_upload, export_csv
from cpsync.students.dashboard import (
    DashboardService,
    Pager,
    choose_period,
    heat_cells,
    period_notice,
    profile_url,
    rank_class,
    return_path,
    student_zone,
)
from cpsync.students.deps import CoachUser, RuntimeDep, StudentId, StudentServiceDep
from cpsync.students.imports import (
    ImportJobNotFoundError,
    ImportJobs,
    JobState,
)
from cpsync.students.models import Student
from cpsync.students.schedule import (
    EVERY_HOURS,
    WEEKDAYS,
    Picker,
    ScheduleError,
    describe,
    picker_of,
    schedule_warning,
)
from cpsync.students.schemas import StudentInput, field_errors
from cpsync.students.service import (
    SORT_KEYS,
    SettingsInput,
    StudentFormError,
    coach_scope,
    latest_runs,
    load_settings,
    save_settings,
    students_page,
    visible_student,
)
from cpsync.students.stats import CONTEST_PERIODS, PROBLEM_PERIODS
from cpsync.web.deps import ReadSessionDep, SessionDep
from cpsync.web.flash import flash_redirect
from cpsync.web.templating import render

router = APIRouter(prefix="/students", include_in_schema=False, dependencies=[CsrfProtected])
PER_PAGE = 25
MAX_UPLOAD_BYTES = 1024 * 1024
SYNC_STARTED = "Sync started: the figures update in a minute or two."
FORM_FIELDS = ("name", "email", "phone", "handle", "group", "timezone")


def build_router(settings: Settings) -> APIRouter:
    combined = APIRouter()
    combined.include_router(router)
    combined.include_router(api.router)
    secret = StudentsConfig.from_settings(settings).cron_secret
    if secret:
        combined.include_router(api.cron_router(secret))
    return combined


def _page(extra: dict[str, Any]) -> dict[str, Any]:
    return {"nav": "students", "rank_class": rank_class, "profile_url": profile_url, **extra}


def _back(path: str = "/students") -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _input_from(form: FormData) -> tuple[StudentInput | None, dict[str, str], dict[str, str]]:
    values = {name: str(form.get(name) or "") for name in FORM_FIELDS}
    values["reminders_enabled"] = "on" if form.get("reminders_enabled") else ""
    try:
        parsed = StudentInput(
            **{k: v for k, v in values.items() if k != "reminders_enabled"},
            reminders_enabled=bool(values["reminders_enabled"]),
        )
    except ValidationError as error:
        return None, field_errors(error), values
    return parsed, {}, values


# ---------------------------------------------------------------- table


@router.get("")
async def students_table(
    request: Request,
    coach: CoachUser,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    q: str = "",
    sort: str = "name",
    order: str = "asc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    sort = sort if sort in SORT_KEYS else "name"
    pager = Pager(page, PER_PAGE, 0)
    found = await students_page(
        session,
        coach,
        query=q,
        sort=sort,
        descending=order == "desc",
        offset=pager.offset,
        limit=PER_PAGE,
    )
    context = _page(
        {
            "students": found.students,
            "pager": Pager(page, PER_PAGE, found.total),
            "q": q,
            "sort": sort,
            "order": "desc" if order == "desc" else "asc",
            "runs": await latest_runs(session, coach, limit=1),
            "is_admin": coach_scope(coach) is None,
        }
    )
    template = (
        "students/_table.html" if request.headers.get("hx-request") else "students/index.html"
    )
    return render(request, template, context)


@router.get(".csv")
async def students_csv(coach: CoachUser, session: ReadSessionDep) -> Response:
    found = await students_page(session, coach, limit=None)
    return Response(
        export_csv(found.students).encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="students.csv"'},
    )


# ---------------------------------------------------------------- add, edit, delete


@router.get("/new")
async def new_student(request: Request, coach: CoachUser, service: StudentServiceDep) -> Response:
    zone = await service.default_zone(coach.id)
    values = {"timezone": zone, "reminders_enabled": "on"}
    return render(
        request, "students/form.html", _page({"student": None, "values": values, "errors": {}})
    )


@router.post("/new")
async def add_student(
    request: Request, coach: CoachUser, service: StudentServiceDep, runtime: RuntimeDep
) -> Response:
    parsed, errors, values = _input_from(await request.form())
    if parsed is not None:
        try:
            saved = await service.add(coach, parsed)
        except StudentFormError as error:
            errors = error.errors
        else:
            await runtime.start_sync(
                coach_id=saved.student.coach_id, student_ids=[saved.student.id], trigger="added"
            )
            return _back(f"/students/{saved.student.id}")
    context = _page({"student": None, "values": values, "errors": errors})
    return render(request, "students/form.html", context, status_code=422)


@router.get("/{student_id}/edit")
async def edit_student(
    request: Request, student_id: StudentId, coach: CoachUser, service: StudentServiceDep
) -> Response:
    student = await service.get(coach, student_id)
    values = {
        "name": student.name,
        "email": student.email,
        "phone": student.phone,
        "handle": student.handle,
        "group": student.group_name,
        "timezone": student.timezone,
        "reminders_enabled": "on" if student.reminders_enabled else "",
    }
    return render(
        request, "students/form.html", _page({"student": student, "values": values, "errors": {}})
    )


@router.post("/{student_id}/edit")
async def update_student(
    request: Request,
    student_id: StudentId,
    coach: CoachUser,
    service: StudentServiceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    student = await service.get(coach, student_id)
    parsed, errors, values = _input_from(await request.form())
    if parsed is not None:
        try:
            saved = await service.update(coach, student_id, parsed)
        except StudentFormError as error:
            errors = error.errors
        else:
            await session.commit()
            await runtime.forget_stats([student_id])
            if saved.needs_sync:
                await runtime.start_sync(
                    coach_id=student.coach_id, student_ids=[student_id], trigger="edited"
                )
            return _back(f"/students/{student_id}")
    context = _page({"student": student, "values": values, "errors": errors})
    return render(request, "students/form.html", context, status_code=422)


@router.get("/{student_id}/delete")
async def confirm_delete(
    request: Request, student_id: StudentId, coach: CoachUser, service: StudentServiceDep
) -> Response:
    student = await service.get(coach, student_id)
    return render(request, "students/delete.html", _page({"student": student}))


@router.post("/{student_id}/delete")
async def delete_student(
    request: Request, student_id: StudentId, coach: CoachUser, service: StudentServiceDep
) -> Response:
    await service.delete(coach, student_id)
    return flash_redirect(request, "/students", "Student deleted.")


@router.post("/{student_id}/reminders")
async def toggle_reminders(
    request: Request,
    student_id: StudentId,
    coach: CoachUser,
    service: StudentServiceDep,
    session: SessionDep,
) -> Response:
    enabled = (await request.form()).get("enabled") == "on"
    student = await service.set_reminders(coach, student_id, enabled)
    if request.headers.get("hx-request"):
        await session.commit()
        return render(request, "students/_reminder_toggle.html", _page({"student": student}))
    return _back(return_path(request.headers.get("referer"), request.url.netloc))


# ---------------------------------------------------------------- sync


@router.post("/{student_id}/sync")
async def sync_student(
    request: Request,
    student_id: StudentId,
    coach: CoachUser,
    service: StudentServiceDep,
    runtime: RuntimeDep,
) -> Response:
    student = await service.get(coach, student_id)
    await runtime.start_sync(coach_id=student.coach_id, student_ids=[student.id], trigger="manual")
    return flash_redirect(request, f"/students/{student_id}", SYNC_STARTED)


@router.post("/sync")
async def sync_all(request: Request, coach: CoachUser, runtime: RuntimeDep) -> Response:
    started = await runtime.start_sync(coach_id=coach_scope(coach), trigger="sync_all")
    message = SYNC_STARTED if started else "A sync is already running; it covers these students."
    return flash_redirect(request, "/students", message)


# ---------------------------------------------------------------- CSV upload


# Import job ids are `secrets.token_urlsafe(12)`: anything else is simply not found.
ImportJobId = Annotated[str, Path(min_length=8, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/import")
async def import_form(request: Request, coach: CoachUser) -> Response:
    return render(request, "students/import.html", _page({"job": None, "errors": {}}))


@router.post("/import")
async def import_upload(
    request: Request,
    coach: CoachUser,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File()],
    mode: Annotated[str, Form(max_length=10)] = "import",
) -> Response:
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        context = _page({"job": None, "errors": {"file": "The file is over 1 MB."}})
        return render(request, "students/import.html", context, status_code=413)
    job = await ImportJobs(runtime.cache, runtime.clock).create(
        coach.id, decode_upload(raw), apply=mode != "preview"
    )
    runtime.start_import(job)
    return _back(f"/students/import/{job.id}")


@router.get("/import/{job_id}")
async def import_job(
    request: Request, job_id: ImportJobId, coach: CoachUser, runtime: RuntimeDep
) -> Response:
    job = await ImportJobs(runtime.cache, runtime.clock).get(coach.id, job_id)
    if job is None:
        raise ImportJobNotFoundError
    # htmx polls only the job's section, until a poll finds it finished.
    partial = request.headers.get("hx-request")
    template = "students/_import_job.html" if partial else "students/import.html"
    return render(request, template, _page({"job": job, "errors": {}}))


@router.post("/import/{job_id}/apply")
async def apply_import(job_id: ImportJobId, coach: CoachUser, runtime: RuntimeDep) -> Response:
    jobs = ImportJobs(runtime.cache, runtime.clock)
    job = await jobs.get(coach.id, job_id)
    if job is None:
        raise ImportJobNotFoundError
    if job.state is JobState.PREVIEW:  # a second click finds it applied or running
        job.apply, job.state = True, JobState.CHECKING
        await jobs.save(job)
        runtime.start_import(job)
    return _back(f"/students/import/{job.id}")


# ---------------------------------------------------------------- settings


@router.get("/settings")
async def settings_page(
    request: Request,
    coach: CoachUser,
    session: ReadSessionDep,
    service: StudentServiceDep,
    runtime: RuntimeDep,
) -> Response:
    zone = await service.default_zone(coach.id)
    row = await load_settings(session, coach.id, zone, runtime.clock)
    flash = "Settings saved." if request.query_params.get("saved") else None
    context = _settings_context(row, _stored_values(row), {}, flash, runtime.clock())
    return render(request, "students/settings.html", context)


@router.post("/settings")
async def save_settings_page(
    request: Request,
    coach: CoachUser,
    session: SessionDep,
    runtime: RuntimeDep,
    service: StudentServiceDep,
) -> Response:
    form = await request.form()
    try:
        await save_settings(session, coach.id, _settings_input(form), runtime.clock)
    except ScheduleError as error:
        # Shown again with what the coach typed, so nothing has to be entered twice.
        zone = await service.default_zone(coach.id)
        row = await load_settings(session, coach.id, zone, runtime.clock)
        submitted = {name: str(form.get(name) or "") for name in SETTINGS_FIELDS}
        errors = {error.field: str(error)}
        context = _settings_context(row, submitted, errors, None, runtime.clock())
        return render(request, "students/settings.html", context, status_code=422)
    return _back("/students/settings?saved=1")


SETTINGS_FIELDS = (
    "frequency",
    "time",
    "every_hours",
    "weekday",
    "custom",
    "timezone",
    "inactive_days",
    "accepted_only",
    "repeat_every_days",
)


def _stored_values(row: Any) -> dict[str, str]:
    """The settings form's fields as the stored settings fill them."""
    picker = picker_of(row.sync_cron)
    return {
        "frequency": picker.frequency,
        "time": f"{picker.hour:02d}:{picker.minute:02d}",
        "every_hours": str(picker.every_hours),
        "weekday": str(picker.weekday),
        "custom": picker.custom,
        "timezone": row.timezone,
        "inactive_days": str(row.inactive_days),
        "accepted_only": "on" if row.accepted_only else "",
        "repeat_every_days": str(row.repeat_every_days or ""),
    }


def _settings_input(form: FormData) -> SettingsInput:
    def number(name: str, default: int) -> int:
        raw = str(form.get(name) or "").strip()
        if not raw:
            return default
        if not raw.isdigit():
            raise ScheduleError("Enter a whole number of days, e.g. 7.", name)
        return int(raw)

    hour, _, minute = str(form.get("time") or "03:00").partition(":")
    picker = Picker(
        frequency=str(form.get("frequency") or "daily"),
        hour=int(hour) if hour.isdigit() else -1,
        minute=int(minute) if minute.isdigit() else -1,
        every_hours=number("every_hours", 6),
        weekday=number("weekday", 1),
        custom=str(form.get("custom") or ""),
    )
    repeat = str(form.get("repeat_every_days") or "").strip()
    return SettingsInput(
        picker=picker,
        timezone=str(form.get("timezone") or "UTC").strip(),
        inactive_days=number("inactive_days", 7),
        accepted_only=form.get("accepted_only") == "on",
        repeat_every_days=number("repeat_every_days", 0) if repeat else None,
    )


def _settings_context(
    row: Any, values: dict[str, str], errors: dict[str, str], flash: str | None, now: datetime
) -> dict[str, Any]:
    return _page(
        {
            "form": values,
            "schedule_text": describe(row.sync_cron, row.timezone),
            "schedule_warning": schedule_warning(row.sync_cron, now),
            "every_hours": EVERY_HOURS,
            "weekdays": list(enumerate(WEEKDAYS)),
            "errors": errors,
            "error_links": {field: field for field in errors if field in SETTINGS_FIELDS},
            "flash": flash,
        }
    )


# Last: `/{student_id}` would otherwise shadow `/import` and `/settings`.
# ---------------------------------------------------------------- profile


@router.get("/{student_id}")
async def student_profile(
    request: Request,
    student_id: StudentId,
    coach: CoachUser,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    contests: str | None = None,
    problems: str | None = None,
) -> Response:
    student = await visible_student(session, coach, student_id)
    contest_choice = choose_period(contests, CONTEST_PERIODS, default=90)
    problem_choice = choose_period(problems, PROBLEM_PERIODS, default=30)
    contest_days, problem_days = contest_choice.days, problem_choice.days
    dashboard = DashboardService(session, runtime.cache, runtime.clock)
    history = await dashboard.contests(student, contest_days)
    figures = await dashboard.problems(student, problem_days)
    today = _today(runtime.clock(), student)
    context = _page(
        {
            "student": student,
            "history": history,
            "figures": figures,
            "contest_days": contest_days,
            "problem_days": problem_days,
            "contest_periods": CONTEST_PERIODS,
            "problem_periods": PROBLEM_PERIODS,
            "heat_cells": heat_cells(figures["heatmap"], today, problem_days),
            "filter_notices": [
                notice
                for notice in (
                    period_notice("the contest history", contest_choice, CONTEST_PERIODS),
                    period_notice("problem solving", problem_choice, PROBLEM_PERIODS),
                )
                if notice
            ],
        }
    )
    return render(request, "students/profile.html", context)


def _today(now: datetime, student: Student) -> date:
    return now.astimezone(student_zone(student)).date()
