"""One place that turns errors into answers: HTML pages for browsers, JSON for the API.

An outage of what the site stands on (the database, Redis, the task queue) is a 503 with
`Retry-After` and a message for people, never a 500 with a traceback's worth of detail:
connection errors of SQLAlchemy and its drivers, of redis-py, and OSErrors on connect.
Anything else of the same families (a constraint violated, bad SQL) is still a bug: 500.
"""

from __future__ import annotations

import logging
import socket
from urllib.parse import quote

import asyncpg
import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cpsync.cache import CacheError
from cpsync.errors import CpsyncError, RetriableError
from cpsync.web.templating import render
from cpsync.web.validation import messages_by_field

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/feeds/", "/healthz", "/readyz", "/openapi.json", "/contests/")
TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}
# How long a client should wait after an outage answer: reconnecting takes seconds.
RETRY_AFTER_SECONDS = 30
OUTAGE_MESSAGE = (
    "cpsync cannot reach its database or task queue right now. "
    "Nothing you sent was lost; please try again in a minute."
)
# The driver errors that mean "the connection", not "the statement". asyncpg's own
# errors reach here only from connecting (SQLAlchemy wraps those raised on a connection).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted (OSError subclasses)
    TimeoutError,
    socket.gaierror,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pool connection came free
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.TooManyConnectionsError,
)


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(JSON_PREFIXES):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status_code, headers=headers)
    context = {
        "status_code": status_code,
        "title": TITLES.get(status_code, "Error"),
        "message": message,
    }
    response = render(request, "error.html", context, status_code=status_code)
    if headers:
        response.headers.update(headers)
    return response


def unavailable_response(request: Request, message: str = OUTAGE_MESSAGE) -> Response:
    return error_response(request, 503, message, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a backing service is unreachable (see the module docstring)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _CONNECTION_ERRORS)


async def handle_outage(request: Request, exc: Exception) -> Response:
    if not is_outage(exc):
        raise exc  # a bug, not an outage: the server's 500 and its log
    log.warning(
        "web.unavailable method=%s path=%s error=%s",
        request.method,
        request.url.path,
        type(exc).__name__,
    )
    return unavailable_response(request)


async def handle_cpsync_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CpsyncError)
    # 401 is "sign in first": a page asked for by GET sends the visitor to sign in and back.
    if exc.status_code == 401 and not wants_json(request) and request.method == "GET":
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    if exc.status_code >= 500:
        log.error("web.error status=%s message=%s", exc.status_code, exc.message)
    if exc.status_code == 503:
        # The cache's message names the Redis address: people get the friendly one.
        message = OUTAGE_MESSAGE if isinstance(exc, CacheError) else exc.message
        retry_after = RETRY_AFTER_SECONDS
        if isinstance(exc, RetriableError) and exc.retry_after is not None:
            retry_after = max(1, round(exc.retry_after))
        return error_response(request, 503, message, {"Retry-After": str(retry_after)})
    return error_response(request, exc.status_code, exc.message)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and message == "Not Found":
        message = "There is nothing at this address."
    return error_response(request, exc.status_code, message, dict(exc.headers or {}))


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if wants_json(request):
        errors = [
            {
                "loc": list(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)
    problems = " ".join(messages_by_field(exc.errors()).values())
    return error_response(request, 422, f"Please check what you sent. {problems}".strip())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CpsyncError, handle_cpsync_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    for family in (
        sqlalchemy.exc.DBAPIError,
        sqlalchemy.exc.TimeoutError,
        redis.exceptions.RedisError,
        OSError,
        asyncpg.PostgresError,
    ):
        app.add_exception_handler(family, handle_outage)
