"""Pages read like a product: one-time flashes without job ids, times the viewer's zone
can show, a students table with a per-row "Sync now", emails that wrap at their parts."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import select

from cpsync.accounts.models import Role, User
from cpsync.calendars.models import CalendarLink, SyncRequest, SyncRunRow
from cpsync.students.models import Student
from tests.recordings import RECORDED_AT
from tests.web.conftest import WebClient, create_user, sign_in, sign_in_new

ISO_TEXT = re.compile(r">[^<]*\d{4}-\d\d-\d\dT\d\d:\d\d[^<]*<")


async def test_sync_now_flashes_once_and_names_no_job(app: FastAPI, client: WebClient) -> None:
    token = await sign_in_new(app, client)
    answer = await client.post("/calendar/sync/now", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/calendar/sync"  # nothing to repeat on reload

    page = await client.get("/calendar/sync")
    assert "Sync requested: your calendars update in a moment" in page.text
    async with app.state.cpsync.db.session() as session:
        job_ids = (await session.scalars(select(SyncRequest.id))).all()
    assert job_ids
    assert not any(job_id in page.text for job_id in job_ids)
    assert "job" not in page.text.lower()

    again = await client.get("/calendar/sync")
    assert "Sync requested" not in again.text


async def test_a_forged_flash_cookie_shows_nothing(app: FastAPI, client: WebClient) -> None:
    await sign_in_new(app, client)
    client.cookies.set("cpsync_flash", "Your account is locked: call +1 555 0100")
    page = await client.get("/calendar/sync")
    assert page.status_code == 200
    assert "locked" not in page.text


async def test_calendar_sync_times_are_marked_for_the_viewers_zone(
    app: FastAPI, client: WebClient
) -> None:
    user = await create_user(app, "bob@example.org")
    async with app.state.cpsync.db.session() as session:
        link = CalendarLink(
            user_id=user.id,
            kind="caldav",
            target="https://dav.example.org/calendars/bob/contests/",
            username="bob",
            secret_encrypted="",
            created_at=RECORDED_AT,
            updated_at=RECORDED_AT,
            last_run_at=RECORDED_AT,
            last_status="ok",
        )
        session.add(link)
        await session.flush()
        session.add(
            SyncRunRow(
                link_id=link.id,
                started_at=RECORDED_AT - timedelta(minutes=3),
                finished_at=RECORDED_AT,
                status="ok",
            )
        )
        await session.commit()
    await sign_in(client, "bob@example.org")
    page = (await client.get("/calendar/sync")).text
    started = (RECORDED_AT - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time datetime="{started}" data-format="datetime">' in page
    assert ISO_TEXT.search(page) is None, ISO_TEXT.search(page)


async def add_student(app: FastAPI, coach_id: int, email: str) -> int:
    async with app.state.cpsync.db.session() as session:
        student = Student(
            coach_id=coach_id,
            name="Ada Lovelace",
            email=email,
            handle="ada_l",
            handle_key="ada_l",
            created_at=RECORDED_AT,
            updated_at=RECORDED_AT,
        )
        session.add(student)
        await session.commit()
        return student.id


async def test_students_table_has_a_sync_now_per_row_and_wraps_emails_at_their_parts(
    app: FastAPI, client: WebClient
) -> None:
    token = await sign_in_new(app, client, Role.COACH)
    async with app.state.cpsync.db.session() as session:
        coach_id = (await session.scalars(select(User.id))).one()
    student_id = await add_student(app, coach_id, "ada.lovelace@analytical.example.org")
    page = (await client.get("/students")).text
    row = page[page.index(f'data-student-id="{student_id}"') :]
    row = row[: row.index("</tr>")]
    form = re.search(
        r'<form method="post" action="/students/(\d+)/sync"[^>]*>(.*?)</form>', row, re.S
    )
    assert form is not None
    assert form.group(1) == str(student_id)
    assert f'name="csrf_token" value="{token}"' in form.group(2)
    assert "Sync now" in form.group(2)
    assert "ada<wbr>.lovelace<wbr>@analytical<wbr>.example<wbr>.org" in row
    assert 'class="break"' not in row
    # The visible label next to the reminders switch.
    assert '<span class="toggle-label" aria-hidden="true">Reminders</span>' in page
