"""CSV upload and download through the routes, against the simulated Codeforces.

The throttle here keeps Codeforces' pace (one call per 2 s) on the app's test clock, so
a file's time budget is measured exactly as in production without waiting for it.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from cpsync.accounts.models import Role
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.web.conftest import WebClient, cheap_argon2, csrf_of, signed_in

from .simulated_codeforces import SimulatedCodeforces, SimUser, unix
from .support import add_student
from .test_routes import add, import_file, one_id, upload
from .web_support import database_url, student_app

__all__ = ["cheap_argon2", "database_url"]  # fixtures, applied here too

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PACE = timedelta(seconds=2)


class PacedThrottle:
    """Codeforces' pace on the test clock: every call moves it on by two seconds."""

    def __init__(self, clock: MutableClock) -> None:
        self.clock = clock
        self.acquired = 0
        self.hold_at: int | None = None
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def acquire(self) -> None:
        self.clock.advance(PACE)
        self.acquired += 1
        if self.acquired == self.hold_at:
            self.reached.set()
            await self.release.wait()


def sim_user(handle: str) -> SimUser:
    return SimUser(handle, registered=unix(NOW) - 86400 * 400, last_online=unix(NOW) - 86400 * 30)


@pytest.fixture
def sim() -> SimulatedCodeforces:
    simulated = SimulatedCodeforces(problems=[])
    for handle in ("tourist", "Petr", "-Absam-"):
        simulated.add(sim_user(handle))
    return simulated


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(NOW)


@pytest.fixture
def throttle(clock: MutableClock) -> PacedThrottle:
    return PacedThrottle(clock)


@pytest.fixture
async def app(
    settings: Settings, database: Any, sim: SimulatedCodeforces, clock, throttle
) -> AsyncIterator[FastAPI]:
    # The import's time budget follows Codeforces' pace, which the paced throttle keeps.
    paced = settings.model_copy(update={"codeforces_interval_seconds": PACE.total_seconds()})
    async with student_app(paced, sim, clock, throttle=throttle) as application:
        yield application


async def students(http: WebClient) -> dict[str, dict[str, Any]]:
    listing = (await http.get("/api/v1/students?per_page=100")).json()
    return {s["handle"]: s for s in listing["students"]}


# ---------------------------------------------------------------- item 3: many handles


async def test_a_file_of_500_handles_imports_at_codeforces_pace(app, sim, clock) -> None:
    known = [f"known_{n:03d}" for n in range(470)]
    unknown = {f"ghost_{n:03d}" for n in range(30)}
    for handle in known:
        sim.add(sim_user(handle))
    ghosts, others = iter(sorted(unknown)), iter(known)
    handles = [next(ghosts) if n % 16 == 0 and n < 480 else next(others) for n in range(500)]
    lines = ["name,handle"] + [f"Student {h},{h}" for h in handles]
    async with signed_in(app, "coach@example.com") as http:
        started = clock()
        report = await import_file(app, http, "\n".join(lines), mode="preview")
        calls = sim.calls["user.info"]
        spent = clock() - started
        assert "470 to add" in report
        assert "30 rows with errors" in report
        for line, handle in enumerate(handles, start=2):
            if handle in unknown:
                assert f"Line {line}: handle: Codeforces has no user" in report
        # One call per batch of a few hundred, and one more per unknown handle.
        assert calls <= 30 + 5
        assert spent == PACE * calls  # far beyond the old fixed 5 s, inside the new budget
        assert (await students(http)) == {}  # a preview writes nothing

        job = report.split('action="/students/import/')[1].split("/apply")[0]
        page = await http.get(f"/students/import/{job}")
        applied = await http.post(
            f"/students/import/{job}/apply", data={"csrf_token": csrf_of(page)}
        )
        assert applied.status_code == 303
        await app.state.resources.broker.wait_idle()
        result = (await http.get(f"/students/import/{job}")).text
        assert "470 added, 0 updated, 0 unchanged, 30 rows skipped." in result
        assert sim.calls["user.info"] - calls <= 5  # applying reuses the checked handles
        listing = (await http.get("/api/v1/students?per_page=1")).json()
        assert listing["total"] == 470


async def test_the_import_page_shows_progress_while_handles_are_checked(app, sim, throttle) -> None:
    for n in range(300):
        sim.add(sim_user(f"known_{n:03d}"))
    lines = ["name,handle"] + [f"S{n},known_{n:03d}" for n in range(300)]
    lines += ["Ghost,ghost_a", "Ghost,ghost_b", "Ghost,ghost_c"]
    throttle.hold_at = 3
    async with signed_in(app, "coach@example.com") as http:
        answer = await upload(http, "\n".join(lines), mode="import")
        assert answer.status_code == 303
        job_page = answer.headers["location"]
        await throttle.reached.wait()
        polled = await http.get(job_page, headers={"HX-Request": "true"})
        assert 'hx-trigger="every 1s"' in polled.text
        assert "Handles checked with Codeforces:</label>" in polled.text
        assert 'max="303"' in polled.text
        checked = int(polled.text.split('value="')[1].split('"')[0])
        assert 0 < checked < 303
        full = await http.get(job_page)
        assert "Importing" in full.text
        throttle.release.set()
        await app.state.resources.broker.wait_idle()
        done = await http.get(job_page)
        assert "300 added, 0 updated, 0 unchanged, 3 rows skipped." in done.text
        assert "every 1s" not in done.text
        last_poll = await http.get(job_page, headers={"HX-Request": "true"})
        assert "300 added" in last_poll.text
        assert "<h1" not in last_poll.text  # only the section htmx swaps


async def test_running_out_of_time_reports_the_unchecked_rows(
    settings: Settings, database: Any, sim: SimulatedCodeforces, clock: MutableClock
) -> None:
    """A Codeforces far slower than its own limit: the budget ends the job, honestly."""

    class Sluggish(PacedThrottle):
        async def acquire(self) -> None:
            self.clock.advance(timedelta(seconds=60))

    lines = ["name,handle", "T,tourist", "G1,ghost_1", "G2,ghost_2", "G3,ghost_3", "P,Petr"]
    async with (
        student_app(settings, sim, clock, throttle=Sluggish(clock)) as app,
        signed_in(app, "coach@example.com") as http,
    ):
        report = await import_file(app, http, "\n".join(lines))
    # 5 handles may take 72 s: two calls (two unknown handles found), then time is up.
    assert "Line 2: handle: Codeforces could not be reached" in report
    assert "Line 3: handle: Codeforces has no user" in report
    assert "Line 4: handle: Codeforces has no user" in report
    assert "Line 5: handle: Codeforces could not be reached" in report
    assert "Line 6: handle: Codeforces could not be reached" in report
    assert "0 added" in report


async def test_an_import_silent_for_ten_minutes_is_shown_as_stopped(app, throttle, clock) -> None:
    throttle.hold_at = 1
    async with signed_in(app, "coach@example.com") as http:
        answer = await upload(http, "name,handle\nT,tourist\n")
        await throttle.reached.wait()
        assert "Importing" in (await http.get(answer.headers["location"])).text
        clock.advance(timedelta(minutes=11))  # as if its process had died
        page = await http.get(answer.headers["location"])
        assert "The import stopped before it finished" in page.text
        assert "every 1s" not in page.text
        throttle.release.set()
        await app.state.resources.broker.wait_idle()


async def test_the_simulator_fails_a_batch_on_its_first_unknown_handle(sim) -> None:
    status, body = sim.answer("user.info", {"handles": "tourist;nobody_1;Petr;nobody_2"})
    assert (status, body) == (
        400,
        {"status": "FAILED", "comment": "handles: User with handle nobody_1 not found"},
    )
    status, body = sim.answer("user.info", {"handles": ";".join(["tourist"] * 10_001)})
    assert status == 400
    assert "between 1 and 10000" in body["comment"]


# ---------------------------------------------------------------- item 4: absent columns


async def coach_with_student(app: FastAPI, http: WebClient) -> int:
    answer = await add(
        http,
        name="Gennady",
        handle="tourist",
        email="g@example.com",
        phone="+7 900 000",
        group="Div 1",
        timezone="Asia/Kolkata",
    )
    assert answer.status_code == 303
    await app.state.resources.broker.wait_idle()
    return await one_id(app, "tourist")


async def test_columns_the_file_lacks_are_left_alone(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await coach_with_student(app, http)
        report = await import_file(app, http, "name,email,handle\nG. K.,gk@example.com,tourist\n")
        assert "0 added, 1 updated" in report
        stored = (await students(http))["tourist"]
        assert (stored["name"], stored["email"]) == ("G. K.", "gk@example.com")
        assert (stored["phone"], stored["group"]) == ("+7 900 000", "Div 1")
        assert stored["timezone"] == "Asia/Kolkata"
        assert stored["reminders_enabled"] is True

        report = await import_file(app, http, "handle,phone,group\ntourist,,\n")
        stored = (await students(http))["tourist"]
        assert (stored["phone"], stored["group"]) == ("", "")  # present and empty: cleared
        assert stored["name"] == "G. K."


async def test_preview_shows_each_row_and_writes_nothing_until_import(app) -> None:
    async with signed_in(app, "coach@example.com") as http:
        await coach_with_student(app, http)
        text = (
            "name,handle,phone,timezone\n"
            "Gennady,tourist,+91 98765 43210,Asia/Kolkata\n"
            "Petr M.,Petr,,\n"
            "Nobody,no_such_user,,\n"
            ",-Absam-,,\n"
        )
        preview = await import_file(app, http, text, mode="preview")
        assert "Preview: nothing is saved yet" in preview
        assert "1 to add, 1 to update, 0 unchanged, 2 rows with errors" in preview
        assert "phone: +7 900 000 → +91 98765 43210" in preview
        assert "name: Petr M." in preview
        assert "Line 4: handle: Codeforces has no user with this handle." in preview
        assert "Line 5: name: A student needs a name; this cell is empty." in preview
        assert (await students(http))["tourist"]["phone"] == "+7 900 000"
        assert "Petr" not in await students(http)

        job = preview.split('action="/students/import/')[1].split("/apply")[0]
        page = await http.get(f"/students/import/{job}")
        await http.post(f"/students/import/{job}/apply", data={"csrf_token": csrf_of(page)})
        await app.state.resources.broker.wait_idle()
        result = (await http.get(f"/students/import/{job}")).text
        assert "1 added, 1 updated, 0 unchanged, 2 rows skipped." in result
        stored = await students(http)
        assert stored["tourist"]["phone"] == "+91 98765 43210"
        assert stored["Petr"]["timezone"] == "UTC"  # the coach's zone
        # A second click on the same preview does not import it twice.
        again = await http.post(f"/students/import/{job}/apply", data={"csrf_token": csrf_of(page)})
        assert again.status_code == 303
        await app.state.resources.broker.wait_idle()
        assert len(await students(http)) == 2


async def test_an_import_belongs_to_the_coach_who_started_it(app) -> None:
    async with signed_in(app, "one@example.com") as one:
        answer = await upload(one, "name,handle\nT,tourist\n", mode="preview")
        job_page = answer.headers["location"]
        await app.state.resources.broker.wait_idle()
    async with signed_in(app, "two@example.com") as two:
        assert (await two.get(job_page)).status_code == 404
        csrf = csrf_of(await two.get("/students/import"))
        stolen = await two.post(job_page + "/apply", data={"csrf_token": csrf})
        assert stolen.status_code == 404
        assert (await two.get("/students/import/not-a-job")).status_code == 404


# ---------------------------------------------------------------- item 16: formulas


async def test_export_escapes_every_formula_start_and_imports_back_unchanged(app) -> None:
    async with signed_in(app, "coach@example.com", Role.COACH) as http:
        await add(http, name="=1+2", handle="tourist", phone="+91 98765 43210", group="@team")
        await add(http, name="-minus", handle="-Absam-", email="absam@example.com")
        coach_id = await coach_of(app, "tourist")
        await add_student(
            app.state.cpsync.db,
            coach_id,
            "Petr",
            created_at=NOW,
            name="'=already quoted",  # starts with the apostrophe that import removes
            rank="\r@SUM(1)",
            last_sync_error="\t=1+1",
        )
        await app.state.resources.broker.wait_idle()  # the adds' syncs, which move last_synced_at
        raw = (await http.get("/students.csv")).content.decode("utf-8-sig")
        rows = {r["handle"]: r for r in csv.DictReader(io.StringIO(raw))}
        assert set(rows) == {"tourist", "'-Absam-", "Petr"}
        assert rows["tourist"]["name"] == "'=1+2"
        assert rows["tourist"]["phone"] == "'+91 98765 43210"
        assert rows["tourist"]["group"] == "'@team"
        assert rows["'-Absam-"]["name"] == "'-minus"
        assert rows["Petr"]["name"] == "''=already quoted"
        assert rows["Petr"]["rank"] == "'\r@SUM(1)"
        assert rows["Petr"]["last_sync_error"] == "'\t=1+1"
        for line in raw.removesuffix("\r\n").split("\r\n"):  # every cell quoted
            assert line.startswith('"')
            assert line.endswith('"')
        assert '"\'=1+2"' in raw

        report = await import_file(app, http, raw.encode("utf-8-sig"))
        assert "0 added, 0 updated, 3 unchanged." in report
        assert (await http.get("/students.csv")).content.decode("utf-8-sig") == raw


async def coach_of(app: FastAPI, handle: str) -> int:
    from sqlalchemy import select

    from cpsync.students.models import Student

    async with app.state.cpsync.db.session() as session:
        found = await session.scalar(select(Student.coach_id).where(Student.handle == handle))
        assert found is not None
        return int(found)
