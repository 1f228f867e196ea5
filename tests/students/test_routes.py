"""Student pages and API over ASGI: access rules, add with handle check, CSV, stats, cron."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from cpsync.accounts.models import Role
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.web.conftest import (
    WebClient,
    cheap_argon2,
    create_user,
    csrf_of,
    make_client,
    signed_in,
)

from .simulated_codeforces import (
    IdSource,
    SimulatedCodeforces,
    SimUser,
    catalogue,
    generate_user,
    problem_json,
    submission_json,
    unix,
)
from .web_support import database_url, student_app

__all__ = ["cheap_argon2", "database_url"]  # fixtures, applied here too

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim() -> SimulatedCodeforces:
    rng = random.Random(3)
    problems = catalogue(40)
    simulated = SimulatedCodeforces(problems=problems)
    ids = IdSource()
    for handle in ("tourist", "Petr"):
        simulated.add(
            generate_user(rng, ids, handle, submissions=200, now=unix(NOW), problems=problems)
        )
    return simulated


@pytest.fixture
async def app(settings: Settings, database, sim) -> AsyncIterator[FastAPI]:
    async with student_app(settings, sim, MutableClock(NOW)) as application:
        yield application


async def add(http: WebClient, **fields: str) -> object:
    page = await http.get("/students/new")
    data = {"csrf_token": csrf_of(page), "reminders_enabled": "on", **fields}
    return await http.post("/students/new", data=data)


async def test_member_cannot_see_students(app) -> None:
    async with signed_in(app, "member@example.com", Role.MEMBER) as http:
        assert (await http.get("/students")).status_code == 403
        assert (await http.get("/api/v1/students")).status_code == 403


async def test_anonymous_is_sent_to_sign_in(app) -> None:
    async with make_client(app) as http:
        answer = await http.get("/students")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/signin")
        assert (await http.get("/api/v1/students")).status_code == 401


async def test_add_checks_the_handle_and_syncs_at_once(app, sim) -> None:
    async with signed_in(app, "coach@example.com") as http:
        bad = await add(http, name="Nobody", handle="no_such_handle", email="n@example.com")
        assert bad.status_code == 422
        assert "Codeforces has no user with this handle" in bad.text
        listing = (await http.get("/api/v1/students")).json()
        assert listing["total"] == 0  # nothing saved

        good = await add(http, name="Gennady", handle="TOURIST", email="g@example.com")
        assert good.status_code == 303
        await app.state.resources.broker.wait_idle()
        student = (await http.get("/api/v1/students")).json()["students"][0]
        assert student["handle"] == "tourist"  # Codeforces' spelling
        assert student["last_synced_at"] is not None
        assert student["rating"] == sim.users["tourist"].rating

        again = await add(http, name="Dup", handle="Tourist")
        assert again.status_code == 422
        assert "already track" in again.text

        page = await http.get(f"/students/{student['id']}?contests=all")
        assert page.status_code == 200
        assert 'id="rating-chart"' in page.text
        assert "rank-" in page.text


async def test_coaches_see_only_their_students_admin_sees_all(app) -> None:
    async with signed_in(app, "one@example.com") as one:
        await add(one, name="A", handle="tourist")
    async with signed_in(app, "two@example.com") as two:
        await add(two, name="B", handle="Petr")
        listing = (await two.get("/api/v1/students")).json()
        assert [s["handle"] for s in listing["students"]] == ["Petr"]
        theirs = await one_id(app, "tourist")
        assert (await two.get(f"/students/{theirs}")).status_code == 404
        assert (await two.get(f"/api/v1/students/{theirs}")).status_code == 404
    async with signed_in(app, "admin@example.com", Role.ADMIN) as admin:
        listing = (await admin.get("/api/v1/students")).json()
        assert listing["total"] == 2


async def one_id(app: FastAPI, handle: str) -> int:
    from sqlalchemy import select

    from cpsync.students.models import Student

    async with app.state.cpsync.db.session() as session:
        found = await session.scalar(select(Student.id).where(Student.handle_key == handle))
        assert found is not None
        return int(found)


async def test_table_search_sort_and_pagination(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        # One real handle is enough to check the table; the other is unknown and reported.
        text = "name,email,phone,handle,group\nStudent 00,s0@example.com,,tourist0,g\n"
        report = await import_file(app, http, text + "Zed,z@example.com,,Petr,b")
        assert "Line 2: handle: Codeforces has no user with this handle." in report
        listing = (await http.get("/api/v1/students?sort=name&order=desc")).json()
        assert [s["name"] for s in listing["students"]] == ["Zed"]
        page = await http.get("/students?q=zed")
        assert "Zed" in page.text
        assert "Student 00" not in page.text
        assert (await http.get("/students?q=nobody")).text.count("data-student-id") == 0


async def test_csv_round_trip_with_commas_quotes_unicode_and_bad_rows(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        text = (
            "name,email,phone,handle,group,timezone,reminders\r\n"
            '"Ödön, ""the"" Great",odon@example.com,+36 1 234,tourist,"Grupa ż",'
            "Europe/Budapest,no\r\n"
            "李雷,li@example.com,,Petr,,Asia/Shanghai,yes\r\n"
            "Bad Email,not-an-email,,Petr2,,,yes\r\n"
            "Bad Zone,b@example.com,,Petr3,,Mars/Olympus,yes\r\n"
            "=HYPERLINK(1),x@example.com,,Pet,,,maybe\r\n"
        )
        report = await import_file(app, http, text.encode("utf-8-sig"))
        assert "2 added" in report
        assert "3 rows skipped" in report
        for line in ("Line 4", "Line 5", "Line 6"):
            assert line in report
        exported = await http.get("/students.csv")
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
        by_handle = {row["handle"]: row for row in rows}
        assert by_handle["tourist"]["name"] == 'Ödön, "the" Great'
        assert by_handle["tourist"]["group"] == "Grupa ż"
        assert by_handle["tourist"]["phone"] == "'+36 1 234"  # see the formula test
        assert by_handle["tourist"]["reminders"] == "no"
        assert by_handle["Petr"]["name"] == "李雷"
        # Uploading the export again changes nothing and adds nobody.
        again = await import_file(app, http, exported.content)
        assert "0 added, 0 updated, 2 unchanged." in again
        second = list(
            csv.DictReader(io.StringIO((await http.get("/students.csv")).text.lstrip("\ufeff")))
        )
        assert [(r["name"], r["group"], r["phone"]) for r in second] == [
            (r["name"], r["group"], r["phone"]) for r in rows
        ]


async def test_export_neutralises_formulas(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="=cmd|' /C calc'!A0", handle="tourist")
        exported = (await http.get("/students.csv")).content.decode("utf-8-sig")
        assert "'=cmd" in exported


async def test_edit_delete_and_toggle(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="Gennady", handle="tourist", email="g@example.com")
        student_id = await one_id(app, "tourist")
        csrf = csrf_of(await http.get("/students"))
        toggled = await http.post(
            f"/students/{student_id}/reminders",
            data={"csrf_token": csrf, "enabled": "off"},
            headers={"HX-Request": "true"},
        )
        assert toggled.status_code == 200
        assert 'aria-checked="false"' in toggled.text
        # Mass assignment: a field outside the form is ignored.
        edited = await http.post(
            f"/students/{student_id}/edit",
            data={"csrf_token": csrf, "name": "G. K.", "handle": "tourist", "reminders_sent": "99"},
        )
        assert edited.status_code == 303
        body = (await http.get(f"/api/v1/students/{student_id}")).json()
        assert body["name"] == "G. K."
        assert body["reminders_sent"] == 0
        assert body["reminders_enabled"] is False
        confirm = await http.get(f"/students/{student_id}/delete")
        assert "cannot be undone" in confirm.text
        gone = await http.post(f"/students/{student_id}/delete", data={"csrf_token": csrf})
        assert gone.status_code == 303
        assert (await http.get(f"/api/v1/students/{student_id}")).status_code == 404


async def test_problem_stats_through_the_api_match_hand_worked_values(app, sim) -> None:
    """Five submissions, worked out by hand (twins 1500/1501 merged, unrated apart)."""
    rng = random.Random(1)
    ids = IdSource(5_000_000)
    sim.problems = [
        problem_json(1500, "A", 800),
        problem_json(1501, "C", 800),  # the Div. 1 twin of 1500A (same name below)
        problem_json(1500, "B", 1400),
        problem_json(1502, "A", None),
    ]
    sim.problems[1]["name"] = sim.problems[0]["name"]
    user = SimUser("handmade", registered=unix(NOW) - 400 * 86400, last_online=unix(NOW) - 60)
    day = 86400
    plan = [  # (problem, verdict, seconds before NOW)
        (sim.problems[0], "OK", 3 * day),
        (sim.problems[1], "OK", 2 * day),  # twin: not a new problem
        (sim.problems[2], "WRONG_ANSWER", 2 * day),
        (sim.problems[2], "OK", 1 * day),
        (sim.problems[3], "OK", 40 * day),  # unrated, outside the 30-day window
    ]
    for problem, verdict, ago in sorted(plan, key=lambda p: -p[2]):
        submission = submission_json(rng, ids, "handmade", problem, unix(NOW) - ago)
        submission["verdict"] = verdict
        user.submissions.insert(0, submission)
    sim.add(user)
    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="Hand", handle="handmade")
        await app.state.resources.broker.wait_idle()
        student_id = await one_id(app, "handmade")
        week = (await http.get(f"/api/v1/students/{student_id}/problems?days=7")).json()
        assert week["solved"] == 2  # 1500A (= 1501C) and 1500B
        assert week["hardest"]["rating"] == 1400
        assert week["average_rating"] == 1100.0
        assert week["average_per_day"] == round(2 / 7, 3)
        assert week["buckets"] == [
            {"rating": r, "solved": 1 if r in (800, 1400) else 0} for r in range(800, 1500, 100)
        ]
        assert week["unrated"] == 0
        everything = (await http.get(f"/api/v1/students/{student_id}/problems?days=all")).json()
        assert everything["solved"] == 3
        assert everything["unrated"] == 1
        assert sum(d["submissions"] for d in everything["heatmap"]) == 5
        assert sum(d["accepted"] for d in everything["heatmap"]) == 4


async def test_heat_map_days_follow_the_student_zone(app, sim) -> None:
    # 20:30 UTC is the next day in Tokyo and the same day in New York.
    at = datetime(2026, 11, 18, 20, 30, tzinfo=UTC)
    user = SimUser("zoned", registered=unix(NOW) - 86400 * 30, last_online=unix(NOW))
    user.submissions.append(
        submission_json(random.Random(2), IdSource(9_000_000), "zoned", sim.problems[0], unix(at))
    )
    sim.add(user)
    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="Tokyo", handle="zoned", timezone="Asia/Tokyo")
        await app.state.resources.broker.wait_idle()
        student_id = await one_id(app, "zoned")
        tokyo = (await http.get(f"/api/v1/students/{student_id}/problems")).json()
        assert [d["day"] for d in tokyo["heatmap"]] == ["2026-11-19"]
        csrf = csrf_of(await http.get("/students"))
        await http.post(
            f"/students/{student_id}/edit",
            data={
                "csrf_token": csrf,
                "name": "NY",
                "handle": "zoned",
                "timezone": "America/New_York",
            },
        )
        new_york = (await http.get(f"/api/v1/students/{student_id}/problems")).json()
        assert [d["day"] for d in new_york["heatmap"]] == ["2026-11-18"]


async def test_settings_picker_stores_a_cron(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        page = await http.get("/students/settings")
        assert "Every day at 03:00" in page.text
        saved = await http.post(
            "/students/settings",
            data={
                "csrf_token": csrf_of(page),
                "frequency": "weekly",
                "time": "18:45",
                "weekday": "5",
                "timezone": "Asia/Kolkata",
                "inactive_days": "5",
                "repeat_every_days": "3",
            },
        )
        assert saved.status_code == 303
        page = await http.get("/students/settings")
        assert "Every Friday at 18:45 (Asia/Kolkata)" in page.text
        bad = await http.post(
            "/students/settings",
            data={"csrf_token": csrf_of(page), "frequency": "custom", "custom": "61 * * * *"},
        )
        assert bad.status_code == 422


async def test_cron_route_absent_without_a_secret(app) -> None:
    async with make_client(app) as http:
        assert (await http.post("/cron/sync")).status_code in (403, 404, 405)


async def test_cron_route_checks_the_secret(settings: Settings, database, sim) -> None:
    configured = settings.model_copy(update={"cron_secret": "s3cret-value"})
    async with student_app(configured, sim, MutableClock(NOW)) as application:
        await create_user(application, "coach@example.com", Role.COACH)
        async with make_client(application) as http:
            assert (await http.post("/cron/sync")).status_code == 401
            wrong = await http.post("/cron/sync", headers={"X-Cron-Secret": "s3cret-valuX"})
            assert wrong.status_code == 401
            right = await http.post("/cron/sync", headers={"X-Cron-Secret": "s3cret-value"})
            assert right.status_code == 202
        await application.state.resources.broker.wait_idle()
        from sqlalchemy import select

        from cpsync.students.models import StudentSyncRun

        async with application.state.cpsync.db.session() as session:
            runs = (await session.scalars(select(StudentSyncRun))).all()
        assert [run.trigger for run in runs] == ["cron"]


async def test_in_process_scheduler_fires_the_stored_cron(app) -> None:
    from sqlalchemy import select

    from cpsync.scheduler import process_scheduler
    from cpsync.students.models import StudentSyncRun

    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="Gennady", handle="tourist")
        page = await http.get("/students/settings")
        # NOW is 12:00 UTC = 17:30 in Kolkata: schedule it for then, effective at once.
        await http.post(
            "/students/settings",
            data={
                "csrf_token": csrf_of(page),
                "frequency": "daily",
                "time": "17:30",
                "timezone": "Asia/Kolkata",
                "inactive_days": "7",
            },
        )
    resources = app.state.resources
    await resources.broker.wait_idle()
    await process_scheduler(resources).tick()
    await resources.broker.wait_idle()
    async with app.state.cpsync.db.session() as session:
        triggers = list(await session.scalars(select(StudentSyncRun.trigger)))
    assert triggers.count("schedule") == 1


async def test_api_form_errors_use_the_validation_shape(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        csrf = csrf_of(await http.get("/students"))
        answer = await http.post(
            "/api/v1/students",
            json={"name": "X", "handle": "no_such_handle"},
            headers={"X-CSRF-Token": csrf},
        )
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "handle"]
        created = await http.post(
            "/api/v1/students",
            json={"name": "G", "handle": "tourist"},
            headers={"X-CSRF-Token": csrf},
        )
        assert created.status_code == 201
        assert created.json()["handle"] == "tourist"


@pytest.fixture
def renamed(sim: SimulatedCodeforces) -> SimulatedCodeforces:
    """`OldAbsam` became `-Absam-`: user.info answers the old handle with the new record."""
    sim.add(SimUser("OldAbsam", registered=unix(NOW) - 86400 * 900, last_online=unix(NOW)))
    sim.rename("OldAbsam", "-Absam-")
    return sim


async def test_an_old_handle_of_a_tracked_student_is_a_form_error(app, renamed) -> None:
    async with signed_in(app, "coach@example.com") as http:
        assert (await add(http, name="Absam", handle="-Absam-")).status_code == 303
        again = await add(http, name="Typed Name", handle="OldAbsam", phone="+91 98765 43210")
        assert again.status_code == 422
        assert "already tracked as -Absam-" in again.text
        assert 'value="Typed Name"' in again.text  # what the coach typed is kept
        assert 'value="+91 98765 43210"' in again.text

        await add(http, name="Gennady", handle="tourist")
        tourist = await one_id(app, "tourist")
        csrf = csrf_of(await http.get(f"/students/{tourist}/edit"))
        edited = await http.post(
            f"/students/{tourist}/edit",
            data={"csrf_token": csrf, "name": "Gennady K.", "handle": "OldAbsam"},
        )
        assert edited.status_code == 422
        assert "already tracked as -Absam-" in edited.text
        assert 'value="Gennady K."' in edited.text
        api = await http.post(
            "/api/v1/students",
            json={"name": "Old", "handle": "OldAbsam"},
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 422
        assert "already tracked as -Absam-" in api.json()["detail"][0]["msg"]
        listing = (await http.get("/api/v1/students?sort=name")).json()
        assert [(s["name"], s["handle"]) for s in listing["students"]] == [
            ("Absam", "-Absam-"),
            ("Gennady", "tourist"),
        ]


async def test_csv_row_with_an_old_handle_is_reported_and_the_others_import(app, renamed) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await add(http, name="Absam", handle="-Absam-")
        report = await import_file(app, http, "name,handle\r\nOld,OldAbsam\r\nPetr,Petr\r\n")
        assert "Line 2" in report
        assert "already tracked as -Absam-" in report
        listing = (await http.get("/api/v1/students?sort=name")).json()
        assert [s["handle"] for s in listing["students"]] == ["-Absam-", "Petr"]


async def upload(http: WebClient, text: str | bytes, **fields: str) -> Any:
    csrf = csrf_of(await http.get("/students/import"))
    content = text.encode() if isinstance(text, str) else text
    return await http.post(
        "/students/import",
        data={"csrf_token": csrf, **fields},
        files={"file": ("students.csv", content, "text/csv")},
    )


async def import_file(
    app: FastAPI, http: WebClient, text: str | bytes, mode: str = "import"
) -> str:
    """Upload, let the background job finish, and read the page with its report."""
    answer = await upload(http, text, mode=mode)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/students/import/")
    await app.state.resources.broker.wait_idle()
    page = await http.get(answer.headers["location"])
    assert page.status_code == 200
    return str(page.text)
